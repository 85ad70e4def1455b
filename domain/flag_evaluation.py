"""Feature-flag evaluation for /flags: PostHog's algorithm, answering exactly as posthog-python 7.91.1's
local evaluation does wherever that SDK reaches an answer, and as PostHog's flags service does elsewhere.

Order per flag (posthog-clients.md §5.3): disabled -> group key -> early-access enrolment -> holdout ->
release conditions in *declared* order, first match wins -> variant (valid override, else the hash lookup
table). When nothing matches, the reported reason is the highest-priority one seen (§2.3), with the index
of the last condition that reported it.

Choices where the SDK gives no answer (it raises or defers to the server):
- a property the request did not send makes its filter inconclusive: that condition does not match and a
  resulting `False` is flagged `inconclusive` (the SDK would have raised InconclusiveMatchError);
- cohort and flag-dependency filters are inconclusive (no cohort data here);
- holdouts follow the SDK and the server alike: `sha1("holdout-<bucketing id>")` against
  `exclusion_percentage` (clamped to 0..100, 100 = everyone), variant `holdout-<holdout id>`;
- `ensure_experience_continuity` has no stored hash-key overrides, so it buckets by distinct_id;
- `bucketing_identifier: "device_id"` without a device id makes person conditions out of rollout (server);
- the group key comes from `groups`, group properties from `group_properties` (missing = no properties);
  an unknown group type or an empty/absent group key gives `no_group_type`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from domain.flag_hashing import (
    VariantRange,
    encode_identifier,
    hash_bytes,
    holdout_fraction,
    variant_for_fraction,
    variant_lookup_table,
)
from domain.flag_properties import PropertyMatcher, compile_properties


class ReasonCode(StrEnum):
    SUPER_CONDITION_VALUE = "super_condition_value"
    HOLDOUT_CONDITION_VALUE = "holdout_condition_value"
    CONDITION_MATCH = "condition_match"
    NO_GROUP_TYPE = "no_group_type"
    OUT_OF_ROLLOUT_BOUND = "out_of_rollout_bound"
    NO_CONDITION_MATCH = "no_condition_match"
    FLAG_DISABLED = "flag_disabled"
    MISSING_DEPENDENCY = "missing_dependency"


# posthog-clients.md §2.3: when no condition matches, the highest of these among the conditions is reported.
# The enum is declared in that order: super_condition_value 6 ... flag_disabled 0, missing_dependency -1.
REASON_PRIORITY: Mapping[ReasonCode, int] = {code: 6 - rank for rank, code in enumerate(ReasonCode)}
# The hot path works on these priorities as plain ints: enum members hash through Python-level code.
_BY_PRIORITY = {priority: code for code, priority in REASON_PRIORITY.items()}
_SUPER, _HOLDOUT, _MATCH, _NO_GROUP, _OUT, _NO_MATCH, _DISABLED = 6, 5, 4, 3, 2, 1, 0

# The flags service's `reason.description` (the `$feature_flag_reason` event property).
_DESCRIPTIONS: Mapping[ReasonCode, str] = {
    ReasonCode.SUPER_CONDITION_VALUE: "Super condition value",
    ReasonCode.HOLDOUT_CONDITION_VALUE: "Holdout condition value",
    ReasonCode.NO_GROUP_TYPE: "No group type",
    ReasonCode.OUT_OF_ROLLOUT_BOUND: "Out of rollout bound",
    ReasonCode.NO_CONDITION_MATCH: "No matching condition set",
    ReasonCode.FLAG_DISABLED: "Feature flag is disabled",
    ReasonCode.MISSING_DEPENDENCY: "Flag cannot be evaluated due to missing dependency",
}


def reason_description(code: ReasonCode, condition_index: int | None) -> str:
    if code is ReasonCode.CONDITION_MATCH:
        return f"Matched condition set {(condition_index or 0) + 1}"
    return _DESCRIPTIONS[code]


@dataclass(frozen=True, slots=True)
class FlagResult:
    key: str
    enabled: bool
    variant: str | None
    reason_code: ReasonCode
    condition_index: int | None
    description: str
    payload: str | None = None
    # True when the flag came out off only because some filter could not be decided from the properties
    # sent (the SDK would raise InconclusiveMatchError and fall back to the server).
    inconclusive: bool = False

    @property
    def value(self) -> bool | str:
        """The SDK's flag value: the variant, else True/False."""
        return (self.variant or True) if self.enabled else False


@dataclass(frozen=True, slots=True)
class FlagDefinition:
    """A stored flag, shaped like PostHog's (and the definitions endpoint's) flag object.

    Treat `filters` as immutable: the compiled form is cached on the instance."""

    id: int
    key: str
    filters: Mapping[str, Any] = field(default_factory=dict)
    active: bool = True
    deleted: bool = False
    version: int | None = None
    ensure_experience_continuity: bool = False
    bucketing_identifier: str | None = None
    _compiled: CompiledFlag | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> FlagDefinition:
        """From a db row / API dict; unknown keys are ignored."""
        return cls(
            id=int(row["id"]),
            key=str(row["key"]),
            filters=row.get("filters") or {},
            active=bool(row.get("active", True)),
            deleted=bool(row.get("deleted", False)),
            version=row.get("version"),
            ensure_experience_continuity=bool(row.get("ensure_experience_continuity", False)),
            bucketing_identifier=row.get("bucketing_identifier"),
        )

    @property
    def compiled(self) -> CompiledFlag:
        if self._compiled is None:
            # Frozen, but this cache is derived from the fields; racing threads build equal values.
            object.__setattr__(self, "_compiled", CompiledFlag(self))
        assert self._compiled is not None
        return self._compiled


class EvaluationContext(NamedTuple):
    """Who a flag is evaluated for: the request's identity, properties and groups (a tuple: built per request)."""

    distinct_id: str
    person_properties: Mapping[str, Any]
    groups: Mapping[str, Any]
    group_properties: Mapping[str, Mapping[str, Any]]
    group_type_mapping: Mapping[str, str]
    device_id: str | None = None

    def group(self, type_index: str) -> tuple[str, Mapping[str, Any]] | None:
        """(group key, group properties) for a group type index, or None when the group was not sent."""
        name = self.group_type_mapping.get(type_index)
        key = self.groups.get(name) if name is not None else None
        # Like the flags service: a string or a number identifies a group; "" or anything else does not.
        if isinstance(key, bool) or not isinstance(key, str | int | float) or key == "":
            return None
        return str(key), self.group_properties.get(name) or {}  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class _Condition:
    index: int
    properties: PropertyMatcher | None  # None: no filters
    threshold: float | None  # rollout / 100; None when the rollout lets everyone through
    variant: str | None  # override naming an existing variant
    aggregation: str | None  # group type index (as a mapping key) or None for persons


def _compile_condition(
    index: int, condition: Mapping[str, Any], flag_aggregation: str | None, variants: Collection[str]
) -> _Condition:
    props = condition.get("properties") or []
    rollout = condition.get("rollout_percentage")
    # The hash never exceeds 1.0, so a rollout of 100 or more passes without hashing.
    threshold = None if rollout is None or float(rollout) / 100 >= 1.0 else float(rollout) / 100
    override = condition.get("variant")
    # A condition without its own aggregation inherits the flag's (the SDK and the server agree).
    own = condition.get("aggregation_group_type_index")
    return _Condition(
        index=index,
        properties=compile_properties(props) if props else None,
        threshold=threshold,
        variant=override if isinstance(override, str) and override in variants else None,
        aggregation=flag_aggregation if own is None else str(own),
    )


def _payload_string(payload: Any) -> str | None:
    # PostHog stores payloads as JSON strings; anything else is serialised so the wire shape stays a string.
    return payload if payload is None or isinstance(payload, str) else json.dumps(payload)


class CompiledFlag:
    """A definition preprocessed for the /flags hot path. Safe to share across threads: its only state is
    caches of immutable results, which racing writers fill with equal values."""

    __slots__ = (
        "_aggregation", "_conditions", "_device_bucketing", "_disabled", "_early_exit", "_enrollment_key",
        "_has_super", "_holdout", "_matches", "_payloads", "_prefix", "_results", "_super", "_super_keys",
        "_variants", "definition",
    )  # fmt: skip

    def __init__(self, definition: FlagDefinition) -> None:
        self.definition = definition
        filters = definition.filters or {}
        self._prefix = encode_identifier(f"{definition.key}.")
        self._results: dict[tuple[int, bool, int | None, str | None, bool], FlagResult] = {}
        self._matches: dict[tuple[int | None, str | None], FlagResult] = {}
        self._payloads = {str(k): _payload_string(v) for k, v in (filters.get("payloads") or {}).items()}
        variants = ((filters.get("multivariate") or {}).get("variants")) or []
        self._variants: tuple[VariantRange, ...] = variant_lookup_table(variants)
        aggregation = filters.get("aggregation_group_type_index")
        self._aggregation = None if aggregation is None else str(aggregation)
        keys = {row.key for row in self._variants}
        conditions = [c for c in filters.get("groups") or [] if isinstance(c, Mapping)]
        self._conditions = tuple(
            _compile_condition(i, c, self._aggregation, keys) for i, c in enumerate(conditions)
        )
        self._early_exit = bool(filters.get("early_exit"))
        bucketing = definition.bucketing_identifier or filters.get("bucketing_identifier")
        self._device_bucketing = bucketing == "device_id"
        self._holdout = _compile_holdout(filters.get("holdout"))
        self._enrollment_key = (
            f"$feature_enrollment/{definition.key}" if filters.get("feature_enrollment") is True else None
        )
        self._super, self._super_keys = _compile_super_group(filters.get("super_groups"))
        self._has_super = self._enrollment_key is not None or self._super is not None
        inactive = not definition.active or definition.deleted
        self._disabled = self._result(_DISABLED, None, None) if inactive else None

    def evaluate(self, ctx: EvaluationContext) -> FlagResult:
        if self._disabled is not None:
            return self._disabled
        if self._aggregation is None:
            bucketing = (ctx.device_id or None) if self._device_bucketing else ctx.distinct_id
            subject: tuple[str | None, Mapping[str, Any]] = (bucketing, ctx.person_properties)
        else:
            group = ctx.group(self._aggregation)
            if group is None:
                return self._result(_NO_GROUP, None, None)
            subject = group
        if self._has_super:
            early = self._super_condition(ctx)
            if early is not None:
                return early
        if self._holdout is not None and subject[0] is not None:
            holdout_id, share = self._holdout
            if share >= 1.0 or holdout_fraction(subject[0]) <= share:
                return self._result(_HOLDOUT, None, f"holdout-{holdout_id}")
        return self._match_conditions(ctx, subject)

    def _super_condition(self, ctx: EvaluationContext) -> FlagResult | None:
        """Early-access enrolment: decides the flag when the person carries the enrolment property."""
        person = ctx.person_properties
        if self._enrollment_key is not None:
            if self._enrollment_key not in person:
                return None
            enrolled = person[self._enrollment_key]
            return self._result(_SUPER, 0, None, enabled=enrolled is True or enrolled == "true")
        if self._super is None or not any(key in person for key in self._super_keys):
            return None
        outcome = self._check(self._super, ctx.distinct_id, person)
        return self._result(_SUPER, 0, None, enabled=outcome == _MATCH)

    def _match_conditions(
        self, ctx: EvaluationContext, subject: tuple[str | None, Mapping[str, Any]]
    ) -> FlagResult:
        best, best_index, inconclusive = _NO_MATCH, None, False
        for condition in self._conditions:
            if condition.aggregation == self._aggregation:
                bucketing, props = subject
            else:
                bucketing, props = ctx.group(condition.aggregation) or (None, {})  # type: ignore[arg-type]
            outcome = self._check(condition, bucketing, props)
            if outcome == _MATCH:
                return self._matched(condition, bucketing)
            if outcome is None:
                outcome, inconclusive = _NO_MATCH, True
            # Outcomes are priorities; `>=` because among equals the flags service reports the last index.
            if outcome >= best:
                best, best_index = outcome, condition.index
            if outcome == _OUT and self._early_exit:
                break
        return self._result(best, best_index, None, inconclusive=inconclusive)

    def _check(self, condition: _Condition, bucketing: str | None, props: Mapping[str, Any]) -> int | None:
        """_MATCH, the priority of the reason it failed, or None when its filters were inconclusive."""
        if bucketing is None:
            # No group key for a group condition, or device-id bucketing without a device id.
            return _NO_GROUP if condition.aggregation is not None else _OUT
        if condition.properties is not None:
            matched = condition.properties(props)
            if matched is not True:
                return None if matched is None else _NO_MATCH
        threshold = condition.threshold
        if (
            threshold is not None
            and hash_bytes(self._prefix + bucketing.encode("utf-8", "surrogatepass")) > threshold
        ):
            return _OUT
        return _MATCH

    def _matched(self, condition: _Condition, bucketing: str | None) -> FlagResult:
        variant = condition.variant
        if variant is None and self._variants and bucketing is not None:
            salted = self._prefix + bucketing.encode("utf-8", "surrogatepass") + b"variant"
            variant = variant_for_fraction(self._variants, hash_bytes(salted))
        cached = self._matches.get((condition.index, variant))
        return cached if cached is not None else self._result(_MATCH, condition.index, variant)

    def _result(
        self, code: int, index: int | None, variant: str | None, *, enabled: bool | None = None,
        inconclusive: bool = False,
    ) -> FlagResult:  # fmt: skip
        """Results are few per flag (reason x condition x variant), so each is built once and shared."""
        on = code in (_MATCH, _HOLDOUT) if enabled is None else enabled
        variant = variant if on else None
        cache_key = (code, on, index, variant, inconclusive)
        cached = self._results.get(cache_key)
        if cached is None:
            reason = _BY_PRIORITY[code]
            payload = self._payloads.get("true" if variant is None else variant) if on else None
            description = reason_description(reason, index)
            cached = FlagResult(
                self.definition.key, on, variant, reason, index, description, payload, inconclusive
            )
            self._results[cache_key] = cached
            if code == _MATCH:
                self._matches[(index, variant)] = cached
        return cached


def _compile_holdout(holdout: Any) -> tuple[Any, float] | None:
    """(holdout id, excluded share) — None when the flag has no usable holdout (as in the SDK)."""
    if not isinstance(holdout, Mapping) or None in (holdout.get("id"), holdout.get("exclusion_percentage")):
        return None
    # Out-of-range percentages are clamped rather than rejected, like the server does.
    return holdout["id"], min(max(float(holdout["exclusion_percentage"]), 0.0), 100.0) / 100


def _compile_super_group(super_groups: Any) -> tuple[_Condition | None, frozenset[str]]:
    """Legacy early access: the first super group, applied when the person has any of its properties."""
    if not super_groups or not isinstance(super_groups[0], Mapping) or not super_groups[0].get("properties"):
        return None, frozenset()
    group = super_groups[0]
    keys = frozenset(str(prop.get("key")) for prop in group["properties"] if isinstance(prop, Mapping))
    return _compile_condition(0, group, None, ()), keys


def _context(
    distinct_id: str, person_properties: Mapping[str, Any] | None, groups: Mapping[str, Any] | None,
    group_properties: Mapping[str, Mapping[str, Any]] | None, group_type_mapping: Mapping[str, str] | None,
    device_id: str | None,
) -> EvaluationContext:  # fmt: skip
    """The properties the SDK (and the flags service) match against: the person's plus `distinct_id`, and
    each sent group's plus `$group_key` — what was sent explicitly wins."""
    distinct_id = str(distinct_id)
    person = {"distinct_id": distinct_id, **(person_properties or {})}
    groups = groups or {}
    sent = group_properties or {}
    # A group's properties that are not an object (a client bug) count as none sent, not as a 500.
    by_group = {
        name: {"$group_key": key, **(props if isinstance(props := sent.get(name), Mapping) else {})}
        for name, key in groups.items()
    }
    return EvaluationContext(distinct_id, person, groups, by_group, group_type_mapping or {}, device_id)


def evaluate_flag(
    flag: FlagDefinition | CompiledFlag,
    distinct_id: str,
    *,
    person_properties: Mapping[str, Any] | None = None,
    groups: Mapping[str, Any] | None = None,
    group_properties: Mapping[str, Mapping[str, Any]] | None = None,
    group_type_mapping: Mapping[str, str] | None = None,
    device_id: str | None = None,
) -> FlagResult:
    """Evaluate one flag (inactive or deleted ones come back disabled with reason flag_disabled)."""
    compiled = flag.compiled if isinstance(flag, FlagDefinition) else flag
    ctx = _context(distinct_id, person_properties, groups, group_properties, group_type_mapping, device_id)
    return compiled.evaluate(ctx)


def evaluate_flags(
    flags: Iterable[FlagDefinition | CompiledFlag],
    distinct_id: str,
    *,
    person_properties: Mapping[str, Any] | None = None,
    groups: Mapping[str, Any] | None = None,
    group_properties: Mapping[str, Mapping[str, Any]] | None = None,
    group_type_mapping: Mapping[str, str] | None = None,
    device_id: str | None = None,
    flag_keys: Collection[str] | None = None,
) -> dict[str, FlagResult]:
    """Evaluate several flags, keyed by flag key in input order; inactive and deleted flags are left out, as
    is every flag not in `flag_keys` when given."""
    ctx = _context(distinct_id, person_properties, groups, group_properties, group_type_mapping, device_id)
    wanted = None if flag_keys is None else frozenset(flag_keys)
    results: dict[str, FlagResult] = {}
    for flag in flags:
        compiled = flag.compiled if isinstance(flag, FlagDefinition) else flag
        definition = compiled.definition
        skipped = not definition.active or definition.deleted
        if skipped or (wanted is not None and definition.key not in wanted):
            continue
        results[definition.key] = compiled.evaluate(ctx)
    return results
