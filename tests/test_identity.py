"""Identity: content-addressed, canonical, stable across spellings; the payload and its rules."""

from __future__ import annotations

import hashlib
import json

import pytest

from retain import ConfigError, Element, IdentityError, Interface, get
from retain.identity import SCHEME, canonical_json, compute_id


class Model(Interface):
    Config = {"lr": 0.1, "depth": 2, "flag": False, "opt": {"name": "adam", "beta": 0.9}, "tags": {}}
    non_identifying = ("verbose", "opt.log_every")


class Verbose(Interface):
    Config = {"lr": 0.1, "verbose": False, "opt": {"log_every": 10}}
    non_identifying = ("verbose", "opt.log_every")


def test_id_is_sha256_of_the_canonical_payload() -> None:
    model = Model({"lr": 0.5})
    payload = {
        "class": "Model",
        "config": {"lr": 0.5},
        "module": Model.__module__,
        "scheme": SCHEME,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert model.id == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert model.short_id == model.id[:6]
    assert len(model.id) == 32


def test_spellings_of_one_configuration_are_one_identity() -> None:
    ids = {
        Model({"lr": 0.5, "opt": {"name": "sgd"}}).id,
        Model({"opt.name": "sgd", "lr": 0.5}).id,
        Model([{"lr": 0.5}, {"opt": {"name": "sgd", "beta": 0.9}}]).id,
        Model([{"lr": 0.7}, {"lr": 0.5, "opt.name": "sgd", "depth": 2}]).id,
    }
    assert len(ids) == 1


def test_numbers_are_normalised_but_booleans_are_not_numbers() -> None:
    assert Model({"depth": 3}).id == Model({"depth": 3.0}).id
    assert Model({"depth": 2.0}).id == Model().id
    assert Model({"tags": {"x": 0}}).id != Model({"tags": {"x": False}}).id  # 0 is not False
    assert Model({"tags": {"x": True}}).id != Model({"tags": {"x": 1}}).id
    assert Model({"tags": {"x": -0.0}}).id == Model({"tags": {"x": 0}}).id


def test_an_integral_float_and_the_int_it_equals_are_one_identity_at_every_magnitude() -> None:
    def tag(value: object) -> str:
        return Model({"tags": {"v": value}}).id

    for n in (2**53, 2**63 - 1024, 2**63, -(2**63), 2**64, 10**20, -(10**22), 2**1023):
        assert float(n) == n
        assert tag(n) == tag(float(n)), n
        assert tag([n]) == tag([float(n)]) and tag({"x": n}) == tag({"x": float(n)})
    assert tag(2**63 + 1) != tag(float(2**63)) and float(2**63 + 1) != 2**63 + 1
    assert tag(2**1024) != tag(2**1024 + 1)  # no float equals these: they stay exact ints
    assert Model({"depth": 2**64}).id == Model({"depth": float(2**64)}).id
    assert Model({"lr": 2**64}).id == Model({"lr": float(2**64)}).id
    # the stored configuration keeps the value as given; only the canonical form meets
    assert Model({"tags": {"v": 2**64}}).config.tags.v == 2**64


def test_explicit_defaults_do_not_change_identity() -> None:
    assert Model({"lr": 0.1, "opt.beta": 0.9}).id == Model().id
    assert Model().canonical_config == {}


def test_adding_a_field_with_a_default_keeps_old_ids() -> None:
    class Grows(Interface):
        Config = {"a": 1}

    before = Grows({"a": 2}).id
    Grows.Config = {"a": 1, "b": "new"}
    try:
        assert Grows({"a": 2}).id == before
        assert Grows({"a": 2, "b": "other"}).id != before
    finally:
        Grows.Config = {"a": 1}


def test_non_identifying_fields_do_not_enter_identity() -> None:
    assert Verbose({"verbose": True, "opt.log_every": 1}).id == Verbose().id
    assert Verbose({"verbose": True}).config.verbose is True
    assert Verbose({"lr": 0.2}).id != Verbose().id


def test_class_and_module_enter_identity() -> None:
    class A(Interface):
        Config = {"x": 1}

    class B(Interface):
        Config = {"x": 1}

    assert A().id != B().id
    assert A() != B()


def test_every_value_that_matters_changes_identity() -> None:
    variants = [
        {}, {"lr": 0.2}, {"tags": {"a": "0.2"}}, {"tags": {"a": None}}, {"depth": 3}, {"flag": True},
        {"opt.name": "sgd"}, {"tags": {"a": 1}}, {"tags": {"a": [1, 2]}}, {"tags": {"a": [2, 1]}},
        {"tags": {"a": {"b": 1}}}, {"tags": {"a.b": 1}}, {"tags": {"a": "1"}},
    ]
    ids = [Model(v).id for v in variants]
    # {"tags": {"a": {"b": 1}}} and {"tags.a.b": ...} style nesting are the same configuration
    assert len(set(ids)) == len(ids) - 1
    assert Model({"tags": {"a": {"b": 1}}}).id == Model({"tags": {"a.b": 1}}).id


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (float("nan"), "'tags.bad'.*no JSON form"),
        (float("inf"), "'tags.bad'.*no JSON form"),
        (object(), "'tags.bad'.*type object cannot be part of an identity"),
        ({1: 2}, "'tags.bad'.*keys must be strings"),
        ({1, 2}, "'tags.bad'.*type set"),
        (b"bytes", "'tags.bad'.*type bytes"),
    ],
)
def test_values_without_canonical_form_are_rejected_naming_the_key(value: object, match: str) -> None:
    model = Model({"tags": {"bad": value}})
    with pytest.raises(IdentityError, match=match):
        model.id


def test_strings_must_be_unicode_that_utf8_can_encode_naming_the_key(store: object) -> None:
    # A lone surrogate ("\udcff", what os.fsdecode makes of an undecodable byte) has no UTF-8 form.
    cases = [
        ({"tags": {"bad": "x\udcff"}}, "'tags.bad'"),
        ({"tags": {"\udcff": 1}}, "'tags'.*key '\\\\udcff'"),
        ({"tags": {"l": ["ok", "\ud800"]}}, "'tags.l\\[1\\]'"),
        ({"opt.name": "\udcff"}, "'opt.name'"),
    ]
    for version, where in cases:
        with pytest.raises(IdentityError, match=f"{where}.*lone surrogate.*UTF-8"):
            Model(version).id
        with pytest.raises(IdentityError):
            get(Model, version).commit()
    assert not list(store.iter_ids())  # type: ignore[attr-defined]
    assert Model({"tags": {"ñandú": "✓ 鳥"}}).id  # any other text is fine


def test_keys_starting_with_dollar_are_reserved(store: object) -> None:
    class Data(Interface):
        Config = {"n": 1}

    class User(Interface):
        Config = {"data": None, "opts": {}}

    forged = {"$interface": Data().id, "class": "Data", "module": Data.__module__}
    for version, where in [
        ({"data": forged}, "'data.\\$interface'"),
        ({"opts": {"$interface": "x"}}, "'opts.\\$interface'"),
        ({"opts": {"a": [{"$ref": 1}]}}, "'opts.a\\[0\\].\\$ref'"),
    ]:
        with pytest.raises(ConfigError, match=f"{where}.*'\\$' are reserved"):
            User(version).id
        with pytest.raises(ConfigError):
            get(User, version).commit()
    assert not list(store.iter_ids())  # type: ignore[attr-defined]

    class Declared(Element):
        Config = {"$interface": 1}

    with pytest.raises(ConfigError, match="'\\$interface'.*reserved"):
        Declared().config
    # an interface itself is the way to put a reference in a config
    assert User({"data": Data()}).canonical_config["data"]["$interface"] == Data().id
    assert User({"opts": {"price$": 1}}).config.opts["price$"] == 1  # only a leading '$'


def _nest(levels: int, leaf: object = 1, key: str = "a") -> dict[str, object]:
    """A config of `levels` nested dicts, itself included."""
    config: dict[str, object] = {key: leaf}
    for _ in range(levels - 1):
        config = {key: config}
    return config


class Open(Interface):
    Config: dict[str, object] = {}


def test_configs_nest_at_most_100_levels_and_those_read_back(store: object) -> None:
    from retain.identity import MAX_DEPTH

    assert MAX_DEPTH == 100
    deepest = get(Open, _nest(100)).commit()
    again = get(Open, _nest(100))
    assert again.is_committed() and again.id == deepest.id and again.config == _nest(100)
    assert Open.from_directory(deepest.local_directory()).config == _nest(100)
    assert [found.id for found in get.all(Open)] == [deepest.id]
    for version, where in [
        (_nest(101), "'a(\\.a){99}'"),
        (_nest(1000), "'a(\\.a){99}'"),
        ({"a": [[[_nest(98)]]]}, "'a\\[0\\]\\[0\\]\\[0\\]\\.a(\\.a){95}'"),
        ({".".join(["k"] * 150): 1}, "'k(\\.k){99}"),
        ([_nest(60), {".".join(["a"] * 60): _nest(50)}], "'a(\\.a){99}'"),
    ]:
        with pytest.raises(ConfigError, match=f"{where}.*deeper than 100 levels"):
            Open(version).id
        with pytest.raises(ConfigError, match="deeper than 100 levels"):
            get(Open, version).commit()
    with pytest.raises(ConfigError, match="deeper than 100 levels"):
        Model({"tags": _nest(100)}).id  # the config itself is one level
    assert [found.id for found in get.all(Open)] == [deepest.id]


def test_a_config_that_contains_itself_is_refused_naming_the_key() -> None:
    loop: dict[str, object] = {"n": 1}
    loop["x"] = loop
    inner: dict[str, object] = {}
    around = {"a": {"b": inner}}
    inner["c"] = around["a"]
    chain: list[object] = []
    chain.append(chain)
    for version, where in [
        (loop, "'x'"), ({"opts": loop}, "'opts.x'"), (around, "'a.b.c'"), ({"l": [1, chain]}, "'l\\[1\\]\\[0\\]'"),
    ]:
        with pytest.raises(ConfigError, match=f"contains itself at key {where}"):
            Open(version).id
    with pytest.raises(ConfigError, match="contains itself at key 'tags.x'"):
        Model({"tags": loop}).id

    class Loops(Element):
        Config = loop

    with pytest.raises(ConfigError, match="contains itself at key 'x'"):
        Loops().config

    class Holds(Element):
        Config = {"anything": None}

    with pytest.raises(ConfigError, match="contains itself at key 'anything.x'"):
        Holds({"anything": loop}).id


def test_tuples_and_numpy_scalars_are_canonical() -> None:
    np = pytest.importorskip("numpy")
    assert Model({"tags": {"a": (1, 2)}}).id == Model({"tags": {"a": [1, 2]}}).id
    assert Model({"depth": np.int64(3)}).id == Model({"depth": 3}).id
    assert Model({"lr": np.float32(0.5)}).id == Model({"lr": 0.5}).id


def test_interfaces_enter_identity_by_reference() -> None:
    class Data(Interface):
        Config = {"n": 1}

    a = Model({"tags": {"data": Data({"n": 2})}})
    b = Model({"tags": {"data": Data({"n": 2})}})
    c = Model({"tags": {"data": Data({"n": 3})}})
    assert a.id == b.id != c.id
    reference = a.canonical_config["tags"]["data"]
    assert reference == {"$interface": Data({"n": 2}).id, "class": "test_interfaces_enter_identity_by_reference.<locals>.Data", "module": Data.__module__}


def test_elements_have_identity_too() -> None:
    class Plain(Element):
        Config = {"a": 1}

    assert Plain({"a": 1}).id == Plain().id != Plain({"a": 2}).id


def test_canonical_json_is_compact_sorted_and_strict() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    with pytest.raises(ValueError):
        canonical_json({"a": float("nan")})
    assert compute_id("m", "C", {}) != compute_id("m", "D", {})
