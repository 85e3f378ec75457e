"""The kernel: what every layer may import, and what imports nothing of the project.

``readings`` (Reading, Quality, channel units), ``errors`` (the one error tree), ``clock``
(the injected Clock), ``quarterhours`` (the quarter-hour grid), ``commands`` (the one Command
type), ``backoff`` (capped, jittered retry delays) and ``config`` (YAML into pydantic models
with errors that name key, file and line).

This ``__init__`` imports nothing on purpose, so that the pure cores can take
``kernel.readings`` or ``kernel.errors`` without loading asyncio or pydantic.
"""
