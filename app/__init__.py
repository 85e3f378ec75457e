"""The composition root: the one place that wires the layers together.

``app.cli`` is the ``waldstadt`` command line; ``app.commands`` its sub-commands (``run``,
``demo``, ``check-site``, ``users``); ``app.demo`` the simulated town run through the same
service a Stadtwerk runs. Nothing below imports this package.
"""
