"""Tokens and the caller's own account."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.auth import Role


class TokenPublic(BaseModel):
    access_token: str = Field(description="send as Authorization: Bearer <access_token>")
    token_type: str = Field(default="bearer", examples=["bearer"])
    expires_at: datetime = Field(description="UTC instant after which the token is refused")
    role: Role


class MePublic(BaseModel):
    username: str = Field(examples=["anna"])
    role: Role = Field(examples=["member"])
    member_id: str | None = Field(
        default=None, description="the member whose data a member account sees", examples=["h01"]
    )
