"""Bucketing hashes and variant tables, checked against posthog-python 7.91.1's own functions."""

from __future__ import annotations

import hashlib
import random
import string
from typing import Any

import pytest
from posthog import feature_flags as _sdk

from domain.flag_hashing import (
    VariantRange,
    hash_bytes,
    hash_fraction,
    holdout_fraction,
    matching_variant,
    variant_for_fraction,
    variant_lookup_table,
)

sdk: Any = _sdk  # untyped SDK module
_ALPHABET = string.ascii_letters + string.digits + "-_.@ éßユーザー🦔"


def _random_text(rng: random.Random, low: int = 1, high: int = 40) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(low, high)))


def test_hash_fraction_equals_sdk_hash() -> None:
    rng = random.Random(1)
    for _ in range(20_000):
        key, identifier = _random_text(rng), _random_text(rng, 0, 260)
        salt = rng.choice(["", "variant", "x"])
        assert hash_fraction(key, identifier, salt) == sdk._hash(key, identifier, salt=salt)


def test_hash_input_layout() -> None:
    # Key, a dot, the identifier, then the salt with no separator.
    assert hash_fraction("flag", "user", "variant") == hash_bytes(b"flag.uservariant")
    assert hash_fraction("flag", "ユーザー") == hash_bytes("flag.ユーザー".encode())


def test_hash_is_in_unit_interval_and_uses_the_first_60_bits() -> None:
    # 15 hex digits of "flag.user-1" divided by float(0xFFFFFFFFFFFFFFF), computed the long way.
    digest = hashlib.sha1(b"flag.user-1").hexdigest()
    assert hash_fraction("flag", "user-1") == int(digest[:15], 16) / float(0xFFFFFFFFFFFFFFF)
    assert 0.0 <= hash_fraction("flag", "user-1") <= 1.0


def test_holdout_fraction_equals_sdk_and_ignores_the_flag() -> None:
    rng = random.Random(2)
    for _ in range(5_000):
        identifier = _random_text(rng, 0, 100)
        assert holdout_fraction(identifier) == sdk._holdout_hash(identifier)
    assert holdout_fraction("user-1") == hash_bytes(b"holdout-user-1")


@pytest.mark.parametrize(
    "split",
    [
        [50, 50],
        [33, 33, 34],
        [50, 20, 20, 5, 5],
        [30, 30, 20.5],
        [100 / 7] * 7,
        [5] * 20,
        [0.1, 99.9],
        [33.33, 33.33, 33.34],
    ],
)
def test_variant_lookup_table_equals_sdk(split: list[float]) -> None:
    variants = [{"key": f"v{i}", "rollout_percentage": p} for i, p in enumerate(split)]
    ours = variant_lookup_table(variants)
    theirs = sdk.variant_lookup_table({"filters": {"multivariate": {"variants": variants}}})
    assert [(r.key, r.value_min, r.value_max) for r in ours] == [
        (row["key"], row["value_min"], row["value_max"]) for row in theirs
    ]


def test_random_splits_pick_the_same_variant_as_the_sdk() -> None:
    rng = random.Random(3)
    for _ in range(300):
        count = rng.randint(2, 20)
        weights = [rng.random() for _ in range(count)]
        total = sum(weights) / rng.choice([100, 95, 60])
        variants = [
            {"key": f"v{i}", "rollout_percentage": round(w / total, 2)} for i, w in enumerate(weights)
        ]
        key = _random_text(rng)
        flag = {"key": key, "filters": {"multivariate": {"variants": variants}}}
        table = variant_lookup_table(variants)
        for _ in range(50):
            identifier = _random_text(rng, 1, 30)
            assert matching_variant(key, identifier, table) == sdk.get_matching_variant(flag, identifier)


def test_variant_ranges_are_half_open() -> None:
    table = (VariantRange("a", 0.0, 0.5), VariantRange("b", 0.5, 0.9))
    assert variant_for_fraction(table, 0.0) == "a"
    assert variant_for_fraction(table, 0.5) == "b"
    assert variant_for_fraction(table, 0.9) is None  # past a split summing to < 100
    assert variant_for_fraction((), 0.3) is None


def test_missing_rollout_percentage_counts_as_zero() -> None:
    table = variant_lookup_table([{"key": "a"}, {"key": "b", "rollout_percentage": 100}])
    assert [(r.key, r.value_min, r.value_max) for r in table] == [("a", 0, 0.0), ("b", 0.0, 1.0)]
