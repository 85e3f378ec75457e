"""Simulated devices that speak the real protocols, and a simulated town. Never imported by
production code."""
