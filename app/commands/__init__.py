"""Sub-command groups of the ``waldstadt`` command line, each with ``register(app)``."""
