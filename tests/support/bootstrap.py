"""The first-start bootstrap as one start of the service runs it, on a database of the test's."""

from __future__ import annotations

from db.bootstrap import Credentials, bootstrap
from db.engine import make_async_engine, make_sessionmaker


async def run_bootstrap(
    database_url: str, personal_api_key: str | None = None, project_api_token: str | None = None
) -> Credentials | None:
    """What the bootstrap created (None when the database already had its organization)."""
    engine = make_async_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            creds = await bootstrap(
                session, personal_api_key=personal_api_key, project_api_token=project_api_token
            )
            await session.commit()
    finally:
        await engine.dispose()
    return creds
