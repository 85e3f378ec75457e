"""The server-rendered pages (German default, English): :mod:`api.web.pages` lists them.

``create_app`` includes :data:`router` and mounts :data:`STATIC_DIR` at ``/static``.
"""

from api.web.pages import router
from api.web.render import STATIC_DIR

__all__ = ["STATIC_DIR", "router"]
