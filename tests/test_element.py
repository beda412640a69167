"""Element: defaults, strict updates, versions, the read-only config."""

from __future__ import annotations

import pytest

from retain import ConfigError, Element, ImmutableError, VersionError


class Train(Element):
    Config = {"lr": 0.1, "batch_size": 8, "model": {"depth": 2, "width": 16}, "extra": {}}

    def version_large(self, factor: float = 2) -> dict[str, int]:
        return {"batch_size": int(self.config.batch_size * factor)}

    def version_deep(self, depth: int = 8) -> dict[str, int]:
        return {"model.depth": depth}

    def version_both(self) -> list[object]:
        return ["~large(2)", {"lr": 0.5}]

    def version_loop(self) -> str:
        return "~loop"

    def version_bad(self) -> int:
        return 3


def test_defaults_and_access() -> None:
    config = Train().config
    assert config.lr == 0.1
    assert config["batch_size"] == 8
    assert config.model.depth == 2
    assert config["model.width"] == 16
    assert config.to_dict() == Train.Config
    assert Train.default_config() == Train.Config


def test_config_is_read_only() -> None:
    train = Train()
    with pytest.raises(ImmutableError, match="read-only"):
        train.config.lr = 1  # type: ignore[misc]
    with pytest.raises(ImmutableError):
        train.config["lr"] = 1  # type: ignore[index]
    with pytest.raises(ImmutableError):
        train.config.model.depth = 1  # type: ignore[misc]
    copy = train.config.to_dict()
    copy["lr"] = 5
    assert train.config.lr == 0.1


def test_lists_are_read_only_but_compare_as_lists() -> None:
    class Layers(Element):
        Config = {"layers": [1, 2, {"a": 3}]}

    layers = Layers().config.layers
    assert layers == [1, 2, {"a": 3}]
    assert layers[2].a == 3
    with pytest.raises(AttributeError):
        layers.append(4)  # type: ignore[attr-defined]


def test_missing_attribute_lists_keys() -> None:
    with pytest.raises(AttributeError, match="batch_size"):
        Train().config.batchsize


def test_dict_update_and_dotted_keys() -> None:
    train = Train([{"lr": 0.01}, {"model.depth": 4}, {"model": {"width": 32}}])
    assert train.config.lr == 0.01
    assert train.config.model.to_dict() == {"depth": 4, "width": 32}


def test_unknown_key_is_named_with_valid_keys() -> None:
    with pytest.raises(ConfigError) as info:
        Train({"batchsize": 4}).config
    message = str(info.value)
    assert "'batchsize'" in message and "batch_size, extra, lr, model" in message
    assert "did you mean 'batch_size'" in message
    with pytest.raises(ConfigError, match="'model.dpth'.*depth, width"):
        Train({"model.dpth": 3}).config
    with pytest.raises(ConfigError, match="not a mapping|plain value"):
        Train({"lr.x": 3}).config


def test_empty_dict_default_is_an_open_mapping() -> None:
    train = Train({"extra": {"anything": 1}, "extra.nested.deep": True})
    assert train.config.extra.to_dict() == {"anything": 1, "nested": {"deep": True}}


def test_dotted_keys_nest_at_every_level_of_an_open_mapping() -> None:
    class Open(Element):
        Config: dict[str, object] = {}

    nested = Open({"a": {"b": {"c": {"d": 1}}}})
    for spelling in ({"a.b": {"c.d": 1}}, {"a": {"b.c": {"d": 1}}}, {"a.b.c.d": 1}):
        element = Open(spelling)
        assert element.config.to_dict() == {"a": {"b": {"c": {"d": 1}}}}
        assert element == nested and element.id == nested.id
    # a plain value replaced by a mapping nests its dotted keys too
    assert Open([{"a": 1}, {"a": {"x.y": 2}}]).config.to_dict() == {"a": {"x": {"y": 2}}}
    # an open mapping under a strict config
    train = Train({"extra": {"x.y": 1}})
    assert train.config.extra.to_dict() == {"x": {"y": 1}}
    assert train == Train({"extra.x.y": 1}) == Train({"extra": {"x": {"y": 1}}})
    assert Train({"extra": {"k": {"p.q": 1}}}) == Train({"extra.k.p.q": 1})


class Typed(Element):
    Config = {
        "n": 10, "lr": 0.1, "name": "x", "flag": False, "layers": [1, 2], "opts": {},
        "model": {"depth": 2, "act": "relu"}, "anything": None,
    }


@pytest.mark.parametrize(
    ("update", "match"),
    [
        ({"n": "abc"}, "'n' of Typed expects int.*default is 10.*got str 'abc'"),
        ({"n": 2.5}, "'n' of Typed expects int.*got float 2.5"),
        ({"n": True}, "'n' of Typed expects int.*got bool True"),
        ({"n": None}, "'n' of Typed expects int.*got None.*default None"),
        ({"lr": "0.1"}, "'lr' of Typed expects a number \\(int or float\\).*got str '0.1'"),
        ({"lr": False}, "'lr' of Typed expects a number.*got bool False"),
        ({"name": 3}, "'name' of Typed expects str.*got int 3"),
        ({"flag": 1}, "'flag' of Typed expects bool.*got int 1"),
        ({"flag": "true"}, "'flag' of Typed expects bool.*got str 'true'"),
        ({"layers": 3}, "'layers' of Typed expects a list.*got int 3"),
        ({"layers": {"a": 1}}, "'layers' of Typed expects a list.*got dict"),
        ({"opts": [1]}, "'opts' of Typed expects a mapping.*got list"),
        ({"model": 3}, "'model' of Typed expects a mapping.*got int 3"),
        ({"model.depth": "deep"}, "'model.depth' of Typed expects int.*got str 'deep'"),
        ({"model": {"act": 1}}, "'model.act' of Typed expects str.*got int 1"),
    ],
)
def test_a_dict_config_types_its_values_by_their_defaults(update: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Typed(update).config


def test_values_that_fit_their_defaults_are_accepted() -> None:
    np = pytest.importorskip("numpy")
    typed = Typed(
        [
            {"n": 3, "lr": 1, "name": "y", "flag": True, "layers": (3,), "opts": {"k": [1]}},
            {"model": {"depth": np.int64(4)}, "anything": {"a": [1, None]}},
            {"lr": np.float32(0.5), "flag": np.bool_(False), "anything": 3},
        ]
    )
    config = typed.config
    assert (config.n, config.lr, config.name, config.flag, config.layers) == (3, 0.5, "y", False, [3])
    assert config.model.depth == 4 and config.anything == 3 and config.opts.to_dict() == {"k": [1]}
    assert Typed({"lr": 1}) == Typed({"lr": 1.0})
    # an integral float is the int it equals (1 == 1.0 is one identity): stored as the int
    assert Typed({"n": 16.0}).config.to_dict()["n"] == 16 and type(Typed({"n": 16.0}).config.n) is int
    assert Typed({"n": 16.0}) == Typed({"n": 16})
    # a failed update leaves nothing half-applied: the element is unchanged
    with pytest.raises(ConfigError):
        typed.version({"n": "many"})
    assert typed.config.n == 3


def test_an_interface_default_accepts_interfaces_of_its_family() -> None:
    from retain import Interface

    class Dataset(Interface):
        Config = {"size": 1}

    class Mnist(Dataset):
        pass

    class Cifar(Dataset):
        pass

    class Model(Interface):
        Config = {"layers": 2}

    class Train(Element):
        Config = {"data": Mnist(), "init": None}

    assert Train({"data": Cifar({"size": 3})}).config.data == Cifar({"size": 3})
    assert Train({"data": Mnist({"size": 2})}).config.data.config.size == 2
    assert Train({"init": Model()}).config.init == Model()
    with pytest.raises(ConfigError, match="'data' of .*Train expects an instance of Dataset.*got Model \\["):
        Train({"data": Model()}).config
    with pytest.raises(ConfigError, match="'data' of .*Train expects an instance of Dataset.*got str 'mnist'"):
        Train({"data": "mnist"}).config


def test_version_calls_with_literal_arguments() -> None:
    assert Train("~large").config.batch_size == 16
    assert Train("~large(3)").config.batch_size == 24
    assert Train("~large(factor=0.5)").config.batch_size == 4
    assert Train("~deep(depth=5)").config.model.depth == 5


def test_lists_apply_left_to_right_and_methods_see_merged_config() -> None:
    train = Train([{"batch_size": 10}, "~large(3)", {"lr": 0.2}, {"lr": 0.3}])
    assert train.config.batch_size == 30
    assert train.config.lr == 0.3
    assert Train(["~large(2)", {"batch_size": 1}]).config.batch_size == 1
    nested = Train([[{"batch_size": 2}, ["~large(5)"]]])
    assert nested.config.batch_size == 10


def test_version_method_may_return_versions() -> None:
    train = Train("~both")
    assert train.config.batch_size == 16 and train.config.lr == 0.5


@pytest.mark.parametrize(
    "version",
    ["large", "~", "~large(", "~large(3", "~1abc", "~a.b(1)", "~large(*[1])", "~large(**{'a': 1})"],
)
def test_malformed_version_strings(version: str) -> None:
    with pytest.raises(VersionError, match="malformed version"):
        Train(version)


def test_arguments_are_parsed_never_evaluated(tmp_path: object) -> None:
    with pytest.raises(VersionError, match="not a Python literal"):
        Train("~large(__import__('os').getcwd())")
    with pytest.raises(VersionError, match="not a Python literal"):
        Train("~large(open('x'))")


def test_missing_version_method_lists_available() -> None:
    with pytest.raises(VersionError, match=r"no method version_huge\(\).*~large"):
        Train("~huge(2)").config


def test_version_arguments_that_do_not_fit() -> None:
    with pytest.raises(VersionError, match="does not fit version_large"):
        Train("~large(1, 2, 3)").config


def test_version_method_returning_junk_or_looping() -> None:
    with pytest.raises(VersionError, match="returned int"):
        Train("~bad").config
    with pytest.raises(VersionError, match="deeper than"):
        Train("~loop").config


def test_a_list_of_versions_that_contains_itself_is_an_error() -> None:
    loop: list[object] = [{"lr": 0.5}]
    loop.append(loop)
    with pytest.raises(VersionError, match="lists of versions nest deeper than 50 levels"):
        Train(loop)
    deep: list[object] = [{"lr": 0.5}]
    for _ in range(49):
        deep = [deep]
    assert Train(deep).config.lr == 0.5


def test_bad_version_types() -> None:
    with pytest.raises(VersionError, match="got int"):
        Train(3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="keys must be strings"):
        Train({1: 2}).config  # type: ignore[dict-item]


def test_version_inspect_append_overwrite() -> None:
    train = Train({"lr": 0.5})
    assert train.version() == [{"lr": 0.5}]
    assert train.version("~large(2)") == [{"lr": 0.5}, "~large(2)"]
    assert train.config.batch_size == 16
    assert train.version({"batch_size": 1}, overwrite=True) == [{"batch_size": 1}]
    assert train.config.lr == 0.1 and train.config.batch_size == 1
    before = train.id
    with pytest.raises(ConfigError):
        train.version({"nope": 1})
    assert train.version() == [{"batch_size": 1}] and train.id == before


def test_version_list_is_a_copy() -> None:
    update = {"lr": 0.5}
    train = Train(update)
    update["lr"] = 0.9
    train.version()[0]["lr"] = 7  # type: ignore[index]
    assert train.config.lr == 0.5


def test_config_that_is_not_dict_or_model() -> None:
    class Odd(Element):
        Config = [1, 2]  # type: ignore[assignment]

    with pytest.raises(ConfigError, match="must be a dict or a pydantic BaseModel"):
        Odd().config


def test_equality_and_hash_follow_identity() -> None:
    a, b = Train({"lr": 0.5}), Train({"lr": 0.5, "batch_size": 8})
    assert a == b and hash(a) == hash(b)
    assert a != Train({"lr": 0.6})
    assert len({a, b, Train()}) == 2
    assert repr(a) == f"Train [{a.id[:6]}]"
