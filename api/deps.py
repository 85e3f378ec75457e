"""Dependencies as ``Annotated`` aliases: ``State``, ``StoreDep``, ``ClockDep``.

Routes declare what they need (``store: StoreDep``) and FastAPI hands it over from the app's
:class:`~api.state.AppState`; the auth dependencies are in :mod:`api.security`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from api.state import AppState
from protocols.clock import Clock
from store import Store


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.waldstadt
    return state


State = Annotated[AppState, Depends(get_state)]


def get_store(state: State) -> Store:
    if state.store is None:
        raise HTTPException(503, "the database is not open (the app is not running)")
    return state.store


def get_clock(state: State) -> Clock:
    return state.clock


StoreDep = Annotated[Store, Depends(get_store)]
ClockDep = Annotated[Clock, Depends(get_clock)]

__all__ = ["ClockDep", "State", "StoreDep", "get_state", "get_store"]
