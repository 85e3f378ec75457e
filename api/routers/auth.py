"""Logging in (OAuth2 password flow → bearer token), logging out, and who the caller is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import OAuth2PasswordRequestForm

from api.auth import LoginThrottled, TokenKind
from api.deps import Caller, State
from api.errors import unauthorized
from api.login import throttled_login
from api.schemas.auth import MePublic, TokenPublic
from kernel.errors import AuthError

router = APIRouter(prefix="/api/v1", tags=["auth"])
TOO_MANY = (
    "too many attempts (from this address, or overall) or the account is locked after "
    "failed logins; Retry-After says when to try again"
)


@router.post(
    "/auth/token",
    response_model=TokenPublic,
    summary="Log in with username and password (OAuth2 password form)",
    responses={401: {"description": "wrong credentials"}, 429: {"description": TOO_MANY}},
)
async def token(
    request: Request,
    state: State,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenPublic:
    try:
        issued = await throttled_login(state, request, form.username, form.password, TokenKind.API)
    except LoginThrottled as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from exc
    except AuthError as exc:
        raise unauthorized(str(exc)) from exc
    return TokenPublic(
        access_token=issued.access_token,
        expires_at=issued.expires_at,
        role=issued.principal.role,
    )


@router.post(
    "/auth/logout",
    status_code=204,
    response_class=Response,
    summary="End the session of this token (it is refused from now on)",
)
async def logout(caller: Caller, state: State) -> Response:
    await state.auth().logout(caller)
    return Response(status_code=204)


@router.get("/me", response_model=MePublic, summary="The caller's account")
async def me(caller: Caller) -> MePublic:
    return MePublic(username=caller.username, role=caller.role, member_id=caller.member_id)
