"""Sign-in codes of the web console: issue one for the bootstrap user, redeem it once.

Helpers never commit; `sign_in_link_code` (used by `make run`) owns its own short transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.accounts import create_personal_key
from db.engine import make_async_engine, make_sessionmaker
from db.tables import ConsoleSignInCode, User
from db.types import utcnow
from domain.keys import new_personal_api_key
from domain.sign_in import KEY_LABEL, SIGN_IN_CODE_TTL, CodeState, code_state, hash_code, new_sign_in_code


async def bootstrap_user(session: AsyncSession) -> User | None:
    """The first user (the one bootstrap created)."""
    return (await session.exec(select(User).order_by(col(User.id)))).first()


async def issue_code(session: AsyncSession, user_id: int, now: datetime) -> str:
    code = new_sign_in_code()
    session.add(
        ConsoleSignInCode(code_hash=hash_code(code), user_id=user_id, expires_at=now + SIGN_IN_CODE_TTL)
    )
    await session.flush()
    return code


async def redeem_code(session: AsyncSession, code: str, now: datetime) -> tuple[CodeState, str | None]:
    """(state, new personal API key): the key only when the code was valid, and then it is spent.

    The conditional UPDATE is what makes the code single-use: of two concurrent redemptions only
    one finds `used_at` still NULL.
    """
    hashed = hash_code(code)
    row = (await session.exec(select(ConsoleSignInCode).where(ConsoleSignInCode.code_hash == hashed))).first()
    state = code_state(
        expires_at=row.expires_at if row else None, used_at=row.used_at if row else None, now=now
    )
    if row is None or state != "valid":
        return state, None
    spent = await session.exec(  # type: ignore[call-overload]
        update(ConsoleSignInCode)
        .where(col(ConsoleSignInCode.id) == row.id, col(ConsoleSignInCode.used_at).is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        return "used", None
    value = new_personal_api_key()
    await create_personal_key(session, row.user_id, value=value, label=KEY_LABEL, scopes=["*"])
    return "valid", value


async def sign_in_link_code(database_url: str) -> str | None:
    """A fresh code for the bootstrap user, committed; None when there is no user yet."""
    engine = make_async_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            user = await bootstrap_user(session)
            if user is None or user.id is None:
                return None
            code = await issue_code(session, user.id, utcnow())
            await session.commit()
            return code
    finally:
        await engine.dispose()
