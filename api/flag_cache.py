"""Per-process, in-memory flag definitions for the SDK hot path (/flags, /decide, capture, definitions).

Keyed by project token. No request reads the database: a background task polls a cheap change marker
(`db/flag_snapshot.py`) every `POLL_SECONDS` and rebuilds only the projects whose marker moved, so a
flag change is visible in every API process well within a second. Entries are immutable and replaced
whole, so a request always sees one consistent snapshot of a project.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine

from api.schemas.flags import minimal_flag_out
from db.engine import make_sessionmaker
from db.flag_snapshot import (
    FlagMarker,
    flag_markers,
    flags_with_experiments,
    group_type_mappings,
    live_flags,
    project_keys_by_token,
    project_tokens,
)
from db.tables import FeatureFlag
from domain.flag_evaluation import CompiledFlag, FlagDefinition

log = logging.getLogger("flagship.flag_cache")

# Half the one-second visibility budget: a change lands at most one poll plus one rebuild later.
POLL_SECONDS = 0.25
# A token the poll has not seen is looked up in the database before anyone is told it does not exist
# (an SDK drops its events for good on a 401, and it starts the instant its project is created). A
# token found missing is not looked up again for this long: a caller spraying random tokens costs one
# indexed query per token per second at most, and a new project's token cannot have been asked for
# before it existed, so the negative cache never refuses a real one.
NEGATIVE_SECONDS = 1.0
MAX_NEGATIVE_TOKENS = 10_000
# Concurrent lookups per process; more callers with unknown tokens queue behind these.
LOOKUP_CONCURRENCY = 4


class FlagMetadata(NamedTuple):
    """What `/flags` reports of a flag besides its evaluation (`metadata`)."""

    id: int
    version: int | None
    description: str  # the flag's `name`, which PostHog's UI calls its description
    has_experiment: bool


@dataclass(frozen=True, slots=True)
class ProjectFlags:
    """One project's flags, compiled for evaluation, plus its rendered local-evaluation definitions."""

    project_id: int
    token: str
    secret: str | None
    active: tuple[CompiledFlag, ...]
    by_key: Mapping[str, CompiledFlag]
    metadata: Mapping[str, FlagMetadata]
    group_types: Mapping[str, int]  # group type name -> index
    group_type_mapping: Mapping[str, str]  # "index" -> name, the evaluation engine's view
    definition_flags: tuple[dict[str, Any], ...]
    definitions: bytes
    etag: str
    # Per-snapshot scratch space of the /flags renderer (pre-rendered JSON per evaluation result).
    render_cache: dict[int, Any] = field(default_factory=dict)


def definition_out(flag: FeatureFlag) -> dict[str, Any]:
    """A flag as the local-evaluation endpoints list it (posthog-clients.md §4): the same
    fields as an experiment's `feature_flag`."""
    return minimal_flag_out(flag)


def _render(flags: Sequence[dict[str, Any]], group_types: Mapping[str, int]) -> tuple[bytes, str]:
    mapping = {str(index): name for name, index in sorted(group_types.items(), key=lambda item: item[1])}
    body = orjson.dumps({"flags": list(flags), "group_type_mapping": mapping, "cohorts": {}})
    return body, f'W/"{hashlib.sha256(body).hexdigest()[:32]}"'


def _compile(row: dict[str, Any]) -> CompiledFlag | None:
    """One unusable definition must not stop the whole cache from refreshing: it is left out, loudly."""
    try:
        return FlagDefinition.from_mapping(row).compiled
    except Exception as error:
        log.warning("flag cache: flag %s of project %s not served (%s)", row["key"], row["team_id"], error)
        return None


def build_project(
    project_id: int,
    token: str,
    secret: str | None,
    flags: Sequence[FeatureFlag],
    group_types: Mapping[str, int],
    experiment_flag_ids: Collection[int] = (),
) -> ProjectFlags:
    definitions = tuple(definition_out(flag) for flag in flags)
    compiled = [flag for row in definitions if row["active"] and (flag := _compile(row)) is not None]
    body, etag = _render(definitions, group_types)
    return ProjectFlags(
        project_id=project_id,
        token=token,
        secret=secret,
        active=tuple(compiled),
        by_key={flag.definition.key: flag for flag in compiled},
        metadata={
            f.key: FlagMetadata(f.id or 0, f.version, f.name, f.id in experiment_flag_ids) for f in flags
        },
        group_types=dict(group_types),
        group_type_mapping={str(index): name for name, index in group_types.items()},
        definition_flags=definitions,
        definitions=body,
        etag=etag,
    )


class FlagCache:
    def __init__(self, engine: AsyncEngine, poll_seconds: float = POLL_SECONDS) -> None:
        self._sessionmaker = make_sessionmaker(engine)
        self._poll_seconds = poll_seconds
        self._by_id: dict[int, ProjectFlags] = {}
        self._by_token: dict[str, ProjectFlags] = {}
        self._markers: dict[int, FlagMarker] = {}
        self._task: asyncio.Task[None] | None = None
        self._missing: dict[str, float] = {}  # token -> monotonic time it was found missing
        self._lookups: dict[str, asyncio.Future[ProjectFlags | None]] = {}
        self._lookup_slots = asyncio.Semaphore(LOOKUP_CONCURRENCY)
        self.loaded = False

    @classmethod
    async def start(cls, engine: AsyncEngine, poll_seconds: float = POLL_SECONDS) -> FlagCache:
        cache = cls(engine, poll_seconds)
        try:
            await cache.refresh()
        except Exception as error:  # the API still starts; /flags answers 503 until a refresh succeeds
            log.warning("flag cache: initial load failed (%s)", type(error).__name__)
        cache._task = asyncio.create_task(cache._poll(), name="flag-cache-poller")
        return cache

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def project(self, token: str) -> ProjectFlags | None:
        """The cached entry only (no database): for callers that fall back on their own."""
        return self._by_token.get(token)

    async def resolve(self, token: str) -> ProjectFlags | None:
        """The project of a token, consulting the database when the cache has not seen it yet.

        None means the token does not exist; a database failure raises (the caller answers 503,
        never a 401 that would make an SDK drop its events). Concurrent requests for one unknown
        token share one lookup."""
        entry = self._by_token.get(token)
        if entry is not None:
            return entry
        missed_at = self._missing.get(token)
        if missed_at is not None and time.monotonic() - missed_at < NEGATIVE_SECONDS:
            return None
        pending = self._lookups.get(token)
        if pending is None:
            pending = asyncio.ensure_future(self._look_up(token))
            self._lookups[token] = pending
            pending.add_done_callback(lambda _: self._lookups.pop(token, None))
        # Shielded: one caller going away must not cancel the lookup the others wait for.
        return await asyncio.shield(pending)

    async def _look_up(self, token: str) -> ProjectFlags | None:
        async with self._lookup_slots, self._sessionmaker() as session:
            keys = await project_keys_by_token(session, token)
            if keys is None:
                self._remember_missing(token)
                return None
            project_id, secret = keys
            flags = await live_flags(session, [project_id])
            groups = await group_type_mappings(session, [project_id])
            experiment_flags = await flags_with_experiments(session, [project_id])
        entry = build_project(project_id, token, secret, flags, groups.get(project_id, {}), experiment_flags)
        current = self._by_token.get(token)
        if current is not None:
            return current  # the poll published it meanwhile: keep one snapshot per project
        self._missing.pop(token, None)
        self._publish({**self._by_id, project_id: entry})
        return entry

    def _remember_missing(self, token: str) -> None:
        if len(self._missing) >= MAX_NEGATIVE_TOKENS:
            cutoff = time.monotonic() - NEGATIVE_SECONDS
            self._missing = {t: at for t, at in self._missing.items() if at >= cutoff}
            if len(self._missing) >= MAX_NEGATIVE_TOKENS:
                self._missing.clear()  # all fresh: forgetting them costs lookups, never correctness
        self._missing[token] = time.monotonic()

    def project_by_id(self, project_id: int) -> ProjectFlags | None:
        return self._by_id.get(project_id)

    def remember_group_types(self, project_id: int, group_types: Mapping[str, int]) -> None:
        """Publish group types a capture just created, before the next poll would."""
        entry = self._by_id.get(project_id)
        if entry is None or dict(entry.group_types) == dict(group_types):
            return
        body, etag = _render(entry.definition_flags, group_types)
        updated = dataclasses.replace(
            entry,
            group_types=dict(group_types),
            group_type_mapping={str(index): name for name, index in group_types.items()},
            definitions=body,
            etag=etag,
        )
        self._publish({**self._by_id, project_id: updated})

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            try:
                await self.refresh()
            except Exception as error:  # keep serving the last good snapshot while the database is away
                log.warning("flag cache: refresh failed (%s)", type(error).__name__)

    async def refresh(self) -> None:
        async with self._sessionmaker() as session:
            tokens = await project_tokens(session)
            # The marker is read before the flags: a write landing in between shows up as a marker
            # change on the next poll, never as a stale entry kept forever.
            markers = await flag_markers(session)
            changed = [
                pid
                for pid, token, secret in tokens
                if markers.get(pid) != self._markers.get(pid) or not self._same_keys(pid, token, secret)
            ]
            flags_by_team: dict[int, list[FeatureFlag]] = {pid: [] for pid in changed}
            groups: dict[int, dict[str, int]] = {}
            experiment_flags: set[int] = set()
            if changed:
                for flag in await live_flags(session, changed):
                    flags_by_team[flag.team_id].append(flag)
                groups = await group_type_mappings(session, changed)
                experiment_flags = await flags_with_experiments(session, changed)
        by_id = {pid: self._by_id[pid] for pid, _, _ in tokens if pid in self._by_id and pid not in changed}
        for pid, token, secret in tokens:
            if pid in flags_by_team:
                by_id[pid] = build_project(
                    pid, token, secret, flags_by_team[pid], groups.get(pid, {}), experiment_flags
                )
        self._markers = markers
        self._publish(by_id)
        self.loaded = True

    def _same_keys(self, project_id: int, token: str, secret: str | None) -> bool:
        entry = self._by_id.get(project_id)
        return entry is not None and entry.token == token and entry.secret == secret

    def _publish(self, by_id: dict[int, ProjectFlags]) -> None:
        self._by_id = by_id
        self._by_token = {entry.token: entry for entry in by_id.values()}
