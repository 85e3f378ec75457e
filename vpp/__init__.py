"""Virtual power plant core (pure): assets, members, communities, tariffs, forecasts, the
dispatch linear program, sharing keys and settlement. No I/O, no clock, no asyncio."""
