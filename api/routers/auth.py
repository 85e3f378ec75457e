"""Logging in (OAuth2 password flow → bearer token) and who the caller is."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from api.deps import Caller, State
from api.errors import too_many_requests, unauthorized
from api.schemas.auth import MePublic, TokenPublic
from kernel.errors import AuthError

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post(
    "/auth/token",
    response_model=TokenPublic,
    summary="Log in with username and password (OAuth2 password form)",
    responses={401: {"description": "wrong credentials"}, 429: {"description": "too many"}},
)
async def token(
    request: Request,
    state: State,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenPublic:
    client = request.client.host if request.client else "unknown"
    wait = state.login_limiter.take(f"{client}:{form.username}", state.auth_clock.monotonic())
    if wait > 0:
        raise too_many_requests(max(1, math.ceil(wait)))
    try:
        issued = await state.auth().login(form.username, form.password)
    except AuthError as exc:
        raise unauthorized(str(exc)) from exc
    return TokenPublic(
        access_token=issued.access_token,
        expires_at=issued.expires_at,
        role=issued.principal.role,
    )


@router.get("/me", response_model=MePublic, summary="The caller's account")
async def me(caller: Caller) -> MePublic:
    return MePublic(username=caller.username, role=caller.role, member_id=caller.member_id)
