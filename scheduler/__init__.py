"""The runtime: clock, read → decide → write cycle, jobs, wiring of site config to drivers."""
