"""HTTP API, web pages and the command line: the only place that speaks HTTP."""
