"""The server-rendered pages: login, one page per role, the language switch.

=========================  =========================================  ==================
page                       shows                                      who
=========================  =========================================  ==================
``/login``, ``/logout``    the login form, each role's home (``/``),  everyone
``/lang/{code}``           the language switch (:mod:`.login`)
``/member``                today per quarter-hour, the month per day  member (own data)
``/member/balances.csv``   the API's CSV export of the own balances   member
                           (:mod:`.member`)
``/operator``              community now, 24 h plan, assets, alarms,  operator
                           overrides (``POST /operator/override``)
                           (:mod:`.operator`)
``/lighting``              a street's luminaires and reasons, the     lighting engineer
                           program editor with its preview, the year
                           (:mod:`.lighting`)
``/audit``                 the audit log and its chain verification   auditor, operator
                           (:mod:`.audit`)
=========================  =========================================  ==================

What every page shares (templates, navigation, formatting, the role guard) is in
:mod:`api.web.render`; forms POST with the CSRF token of :mod:`api.web.session`. The figures
come from the views (:mod:`api.web.member_views`, :mod:`api.web.operator_views`,
:mod:`api.web.lighting_views`), which read through the API's own functions, and the live state
of the running service from :mod:`api.live`, as the API's ``/assets`` and ``/community/now``
do.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.web import audit, lighting, login, member, operator

router = APIRouter(include_in_schema=False)
for _page in (login, member, operator, lighting, audit):
    router.include_router(_page.router)

__all__ = ["router"]
