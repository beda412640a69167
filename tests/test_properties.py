"""Property tests: identity is a function of the configuration, not of how it was spelled;
what is committed comes back unchanged."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import retain
from retain import Interface, get
from retain.identity import canonical_json

KEYS = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)
    ),
    max_leaves=12,
)
PARAMS = st.dictionaries(KEYS, VALUES, max_size=6)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class Open(Interface):
    Config = {"params": {}, "lr": 0.1, "nested": {"depth": 2, "width": 8}}


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def _as_floats(value: Any) -> Any:
    """The same configuration with every integer spelled as a float, where that is exact."""
    if isinstance(value, dict):
        return {k: _as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_floats(v) for v in value]
    if type(value) is int and abs(value) < 2**53:
        return float(value)
    return value


def _dotted(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and item:
            out.update(_dotted(item, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = item
    return out


@FAST
@given(params=PARAMS, seed=st.integers())
def test_identity_ignores_key_order(params: dict[str, Any], seed: int) -> None:
    assert Open({"params": params}).id == Open({"params": _shuffled(params, random.Random(seed))}).id


@FAST
@given(params=PARAMS)
def test_identity_ignores_int_float_spelling(params: dict[str, Any]) -> None:
    assert Open({"params": params}).id == Open({"params": _as_floats(params)}).id


@FAST
@given(params=PARAMS)
def test_identity_ignores_dotted_versus_nested(params: dict[str, Any]) -> None:
    nested = Open({"params": params})
    dotted = Open({f"params.{k}": v for k, v in _dotted(params).items()} if params else {})
    assert nested.config.params.to_dict() == dotted.config.params.to_dict()
    assert nested.id == dotted.id


@FAST
@given(params=PARAMS, split=st.integers(min_value=0, max_value=6))
def test_identity_ignores_how_updates_are_split(params: dict[str, Any], split: int) -> None:
    items = list(params.items())
    parts = [{"params": dict(items[:split])}, {"params": dict(items[split:])}]
    assert Open({"params": params}).id == Open(parts).id


@FAST
@given(a=PARAMS, b=PARAMS)
def test_identity_changes_with_the_configuration(a: dict[str, Any], b: dict[str, Any]) -> None:
    first, second = Open({"params": a}), Open({"params": b})
    same_content = canonical_json(first.canonical_config) == canonical_json(second.canonical_config)
    assert (first.id == second.id) == same_content


@FAST
@given(lr=st.floats(allow_nan=False, allow_infinity=False), depth=st.integers())
def test_identity_changes_with_every_declared_value(lr: float, depth: int) -> None:
    base = Open()
    changed_lr = Open({"lr": lr})
    changed_depth = Open({"nested.depth": depth})
    assert (changed_lr.id == base.id) == (lr == 0.1)
    assert (changed_depth.id == base.id) == (depth == 2)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=PARAMS)
def test_commit_round_trips_every_config(params: dict[str, Any], tmp_path_factory: Any) -> None:
    with retain.storage(tmp_path_factory.mktemp("s")):
        committed = get(Open, {"params": params}).commit()
        by_get = get(Open, {"params": params})
        by_directory = Interface.from_directory(committed.local_directory())
        assert by_get.is_committed() and by_get == committed == by_directory
        assert by_directory.config.params.to_dict() == params
        assert by_get.config.to_dict() == committed.config.to_dict()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=VALUES, text=st.text(alphabet=st.characters(blacklist_categories=["Cs"])), rows=st.lists(VALUES, max_size=5))
def test_files_round_trip_through_every_codec(value: Any, text: str, rows: list[Any], tmp_path_factory: Any) -> None:
    with retain.storage(tmp_path_factory.mktemp("s")):
        holder = get(Open).commit()
        holder.save_file("v.json", value)
        holder.save_file("v.p", value)
        holder.save_file("t.txt", text)
        holder.save_file("r.jsonl", rows)
        array = np.asarray([[1.5, -2.0], [3.25, 0.0]]) * (len(text) + 1)
        holder.save_file("a.npy", array)
        again = Interface.from_directory(holder.local_directory())
        assert again.load_file("v.json") == value
        assert again.load_file("v.p") == value
        assert again.load_file("t.txt") == text
        assert again.load_file("r.jsonl") == rows
        assert np.array_equal(again.load_file("a.npy"), array)
