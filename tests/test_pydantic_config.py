"""Config as a pydantic model: nested models, per-field validation errors, strict keys."""

from __future__ import annotations

from typing import Any, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field

from retain import ConfigError, Element, Interface, get


class Optimizer(BaseModel):
    name: str = "adam"
    lr: float = 1e-3


class TrainConfig(BaseModel):
    epochs: int = 10
    optimizer: Optimizer = Field(default_factory=Optimizer)
    tags: dict[str, Any] = Field(default_factory=dict)
    seed: Optional[int] = None


class Train(Interface):
    Config = TrainConfig

    def version_fast(self, lr: float = 0.1) -> dict[str, Any]:
        return {"optimizer.lr": lr, "epochs": self.config.epochs // 2}


def test_defaults_validation_and_nested_access() -> None:
    train = Train({"epochs": "5", "optimizer.name": "sgd"})
    assert train.config.epochs == 5  # validated and coerced by pydantic
    assert train.config.optimizer.name == "sgd"
    assert train.config.optimizer.lr == 1e-3
    assert isinstance(train.config_model, TrainConfig)
    assert Train.default_config().to_dict() == TrainConfig().model_dump()


def test_version_methods_see_merged_config() -> None:
    train = Train([{"epochs": 8}, "~fast(0.5)"])
    assert train.config.epochs == 4 and train.config.optimizer.lr == 0.5


def test_wrong_type_is_reported_per_field() -> None:
    with pytest.raises(ConfigError) as info:
        Train({"epochs": "many", "optimizer.lr": "fast"}).config
    message = str(info.value)
    assert "epochs:" in message and "optimizer.lr:" in message and "'many'" in message


def test_unknown_keys_are_rejected_even_though_pydantic_ignores_extras() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'optimizer.momentum'.*lr, name"):
        Train({"optimizer.momentum": 0.9}).config
    with pytest.raises(ConfigError, match="unknown config key 'epoch'"):
        Train({"epoch": 3}).config


def test_dict_typed_field_is_open() -> None:
    assert Train({"tags": {"a": 1}, "tags.b": 2}).config.tags.to_dict() == {"a": 1, "b": 2}


def test_identity_drops_defaults_and_normalises() -> None:
    assert Train({"epochs": 10}).id == Train().id
    assert Train({"optimizer.lr": 0.001}).id == Train().id
    assert Train({"epochs": 3}).id == Train({"epochs": 3.0}).id
    assert Train({"epochs": 3}).canonical_config == {"epochs": 3}


def test_required_fields() -> None:
    class NeedsName(BaseModel):
        name: str
        size: int = 1

    class Named(Element):
        Config = NeedsName

    with pytest.raises(ConfigError, match="name: Field required"):
        Named().config
    assert Named({"name": "x"}).canonical_config == {"name": "x"}


def test_interface_fields_with_arbitrary_types() -> None:
    class Data(Interface):
        Config = {"n": 1}

    class ModelConfig(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        data: Optional[Data] = None
        depth: int = 2

    class Model(Interface):
        Config = ModelConfig

    data = Data({"n": 5})
    model = get(Model, {"data": data}).commit()
    assert data.is_committed()
    reloaded = Interface.from_directory(model.local_directory())
    assert reloaded.config.data == data and isinstance(reloaded.config_model, ModelConfig)
    assert reloaded.config.data.config.n == 5


DOUBLING = '''
from typing import Annotated

from pydantic import BaseModel, BeforeValidator

from retain import Component


class Config(BaseModel):
    word: Annotated[str, BeforeValidator(lambda v: v * 2)] = "ab"


class Doubling(Component):
    Config = Config

    def __call__(self):
        self.save_file("seen.txt", self.config.word)
'''


def test_a_transforming_validator_runs_once_reloads_carry_the_stored_value(project: Any) -> None:
    """A reload, and every run, sees exactly the stored resolved config: a validator that
    transforms its input is not applied again to the stored (already validated) value."""
    import retain
    from conftest import write_module

    write_module(project, "doubling", DOUBLING)
    import doubling  # type: ignore[import-not-found]

    made = get(doubling.Doubling)
    assert made.config.word == "abab"
    made.commit()
    assert get(doubling.Doubling).config.word == "abab"
    assert get(doubling.Doubling).config_model.word == "abab"
    assert doubling.Doubling.from_directory(made.local_directory()).config.word == "abab"
    assert retain.get.by_id(made.id).config.word == "abab"
    with get("retain.execution.pool", {"processes": 1}):
        made.launch()
    assert made.load_file("seen.txt") == "abab"


def test_reloads_keep_the_declared_types_of_pydantic_values() -> None:
    import datetime

    class Dated(BaseModel):
        when: datetime.date = datetime.date(2024, 1, 2)

    class WithDate(Interface):
        Config = Dated

    committed = get(WithDate, {"when": "2024-05-06"}).commit()
    again = get(WithDate, {"when": "2024-05-06"})
    assert again == committed and again.config.when == datetime.date(2024, 5, 6)
    assert WithDate.from_directory(committed.local_directory()).config.when == datetime.date(2024, 5, 6)
