"""The server-rendered pages (German default, English): :mod:`api.web.pages`.

``create_app`` includes :data:`router` and mounts :data:`STATIC_DIR` at ``/static``.
"""

from api.web.pages import STATIC_DIR, router

__all__ = ["STATIC_DIR", "router"]
