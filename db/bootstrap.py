"""First start: one organization, project 1 with a `phc_` token, one user with a `phx_` key.

Values come from BOOTSTRAP_PERSONAL_API_KEY / BOOTSTRAP_PROJECT_API_TOKEN when set, otherwise they
are generated; either way they are written to DATA_DIR/credentials.json (mode 0600) and printed once,
only when stdout is an interactive terminal (`make run`): never into a log stream (compose, CI), where
a secret would be kept and shipped wherever the logs go (design.md §4).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.accounts import create_personal_key, create_project, key_by_value, new_uuid
from db.engine import make_async_engine, make_sessionmaker
from db.tables import BootstrapKey, Organization, User
from domain.keys import hash_key, new_personal_api_key, new_project_token
from settings import Settings


@dataclass(frozen=True)
class Credentials:
    personal_api_key: str
    project_api_token: str
    project_id: int
    user_email: str


async def bootstrap(
    session: AsyncSession, *, personal_api_key: str | None, project_api_token: str | None
) -> Credentials | None:
    """Create the first organization if there is none; returns what was created, else None."""
    existing = (await session.exec(select(func.count()).select_from(Organization))).one()
    if existing:
        await _ensure_bootstrap_key(session, personal_api_key)
        return None
    org = Organization(id=new_uuid(), name="Flagship")
    session.add(org)
    await session.flush()
    token = project_api_token or new_project_token()
    project = await create_project(session, org.id, "Default project", token=token)
    user = User(
        uuid=new_uuid(),
        distinct_id=new_uuid(),
        organization_id=org.id,
        current_project_id=project.id,
        email="admin@flagship.local",
        first_name="Admin",
    )
    session.add(user)
    await session.flush()
    assert user.id is not None and project.id is not None
    key = personal_api_key or new_personal_api_key()
    await create_personal_key(session, user.id, value=key, label="bootstrap", scopes=["*"])
    session.add(BootstrapKey(secure_value=hash_key(key)))
    return Credentials(key, token, project.id, user.email)


async def _ensure_bootstrap_key(session: AsyncSession, value: str | None) -> None:
    """A BOOTSTRAP_PERSONAL_API_KEY set after the first start still becomes a working key, once: a
    key applied before and deleted since stays deleted (deleting it is how an operator revokes it)."""
    if value is None:
        return
    secure_value = hash_key(value)
    if await session.get(BootstrapKey, secure_value) is not None:
        return
    if await key_by_value(session, value) is None:
        user = (await session.exec(select(User).order_by(User.id))).first()  # type: ignore[arg-type]
        if user is None or user.id is None:
            return
        await create_personal_key(session, user.id, value=value, label="bootstrap", scopes=["*"])
    session.add(BootstrapKey(secure_value=secure_value))


def write_credentials(data_dir: Path, creds: Credentials) -> Path:
    path = data_dir / "credentials.json"
    path.write_text(json.dumps(asdict(creds), indent=2) + "\n")
    path.chmod(0o600)
    return path


async def bootstrap_from_settings(settings: Settings) -> Credentials | None:
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            creds = await bootstrap(
                session,
                personal_api_key=settings.bootstrap_personal_api_key,
                project_api_token=settings.bootstrap_project_api_token,
            )
            await session.commit()
    finally:
        await engine.dispose()
    if creds is not None:
        announce(creds, write_credentials(settings.data_dir, creds))
    return creds


def announce(creds: Credentials, path: Path) -> None:
    """The secrets go to a terminal only; a log stream learns where they are, not what they are."""
    if sys.stdout.isatty():
        print(
            f"flagship: bootstrapped project {creds.project_id}\n"
            f"  personal API key: {creds.personal_api_key}\n"
            f"  project token:    {creds.project_api_token}\n"
            f"  (saved to {path})",
            flush=True,
        )
    else:
        print(
            f"flagship: bootstrapped project {creds.project_id}; credentials saved to {path}", file=sys.stderr
        )
