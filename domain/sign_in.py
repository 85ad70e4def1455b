"""Single-use sign-in codes for the web console (README "Web console").

`make run` prints a link carrying a code; the console trades it once, within ten minutes, for a new
personal API key of the bootstrap user. Only the code's hash is stored, like the keys themselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from domain.keys import hash_key, random_token

# Long enough to open the link from the terminal, short enough that a code left in a scrollback
# buffer is useless by the time anyone else reads it.
SIGN_IN_CODE_TTL = timedelta(minutes=10)
KEY_LABEL = "Web console"

CodeState = Literal["valid", "unknown", "used", "expired"]

MESSAGES: dict[CodeState, str] = {
    "valid": "",
    "unknown": "This sign-in link is not valid. Run `make run` again for a new one, or sign in with a key.",
    "used": "This sign-in link has already been used. Run `make run` again for a new one.",
    "expired": "This sign-in link has expired (links last 10 minutes). Run `make run` again for a new one.",
}


def new_sign_in_code() -> str:
    return random_token(24)


def hash_code(code: str) -> str:
    return hash_key(code)


def code_state(*, expires_at: datetime | None, used_at: datetime | None, now: datetime) -> CodeState:
    """What a presented code is worth: `expires_at` None means no such code was issued."""
    if expires_at is None:
        return "unknown"
    if used_at is not None:
        return "used"
    return "valid" if now < expires_at else "expired"
