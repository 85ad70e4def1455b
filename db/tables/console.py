"""Sign-in codes of the web console (domain/sign_in.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from db.types import UTCDateTime, utcnow


class ConsoleSignInCode(SQLModel, table=True):
    __tablename__ = "console_sign_in_code"

    id: int | None = Field(default=None, primary_key=True)
    # "sha256$<hex>" of the code: a stolen database cannot be turned into a sign-in.
    code_hash: str = Field(sa_column=Column(String(100), unique=True, nullable=False))
    user_id: int = Field(foreign_key="user.id", index=True)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
