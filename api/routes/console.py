"""JSON endpoints the web console needs beyond PostHog's API (README "Web console"); any client
may use them.

- `POST /api/console/sign_in/` trades a single-use code from `make run`'s link for a new
  personal API key of the bootstrap user.
- `GET /api/console/config/`: where the Temporal UI is, for the per-experiment workflow link.
- `GET /api/projects/{id}/experiment_exposures/?ids=1,2,…`: exposures per variant of a page of
  experiments, from one event query for the whole page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Query
from pydantic import BaseModel, ConfigDict

from api.deps import Auth, Principal, ProjectAuth, ProjectContext, SessionDep, SettingsDep
from api.errors import ApiError
from api.render import MAX_PAGE_SIZE, bad_request
from api.routing import FlexRouter
from db.console_sign_in import redeem_code
from db.experiment_exposures import exposures_of
from db.types import utcnow
from domain.metric_engine import to_micros
from domain.sign_in import MESSAGES

router = FlexRouter(tags=["console"])
project_router = FlexRouter(tags=["console"])


class SignInBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    code: str = ""


@router.post("/api/console/sign_in/", status_code=201, summary="Trade a sign-in code for a personal API key")
async def sign_in(session: SessionDep, body: Annotated[SignInBody | None, Body()] = None) -> dict[str, Any]:
    """201 `{"personal_api_key": "phx_…"}`: a new key (all scopes) of the bootstrap user, shown only
    in this response. A code works once and for 10 minutes; otherwise 400 with `attr` `code`."""
    code = (body.code if body else "").strip()
    if not code:
        raise ApiError(400, "validation_error", "required", "This field is required.", "code")
    state, key = await redeem_code(session, code, utcnow())
    if key is None:
        raise ApiError(400, "validation_error", f"sign_in_code_{state}", MESSAGES[state], "code")
    await session.commit()
    return {"personal_api_key": key}


@router.get("/api/console/config/", summary="Settings the web console shows")
async def config(
    principal: Annotated[Principal, Depends(Auth(None))], settings: SettingsDep
) -> dict[str, Any]:
    return {"temporal_ui_url": settings.temporal_ui_url, "temporal_namespace": settings.temporal_namespace}


def _ids(raw: str) -> list[int]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not all(p.isdigit() and len(p) < 12 for p in parts):
        raise bad_request("ids must be a comma-separated list of experiment ids", attr="ids")
    if len(parts) > MAX_PAGE_SIZE:
        raise bad_request(f"At most {MAX_PAGE_SIZE} ids at once", attr="ids")
    return sorted({int(p) for p in parts})


@project_router.get("/experiment_exposures/", summary="Exposures per variant of several experiments")
async def experiment_exposures(
    ctx: Annotated[ProjectContext, Depends(ProjectAuth("experiment:read"))],
    session: SessionDep,
    ids: Annotated[str, Query(description="Experiment ids, comma-separated (at most 1000).")] = "",
) -> dict[str, Any]:
    """`{"results": {"<id>": {"control": 120, "test": 118, "$multiple": 2}}}` as of now, counted as
    `ExperimentExposureQuery`'s `total_exposures`; drafts and unknown ids are absent."""
    counts = await exposures_of(session, ctx.project_id, _ids(ids), to_micros(utcnow()) + 1)
    return {"results": {str(eid): totals for eid, totals in counts.items()}}
