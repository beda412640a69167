"""Pinned ids. If one of these changes, every stored result becomes unreachable: a change here
is a breaking change and needs a new identity scheme (retain.identity.SCHEME) and a migration."""

from __future__ import annotations

from typing import Any

import pytest

from retain import Interface
from retain.identity import compute_id


class MnistData(Interface):
    __module__ = "golden.mnist_data"
    Config = {"batch_size": 8, "name": "mnist"}

    def version_large(self, factor: float = 2) -> dict[str, int]:
        return {"batch_size": int(self.config.batch_size * factor)}


class Train(Interface):
    __module__ = "golden.train"
    Config = {"lr": 0.1, "model": {"depth": 2, "width": 16}, "extra": {}, "seed": None}
    non_identifying = ("verbose",)


CASES: list[tuple[str, Any, str]] = [
    ("mnist-default", (MnistData, None), "6f8633fdaaaf18b722766307405a780e"),
    ("mnist-explicit-default", (MnistData, {"batch_size": 8}), "6f8633fdaaaf18b722766307405a780e"),
    ("mnist-16", (MnistData, {"batch_size": 16}), "0290e4264e5ad54714e0301e09b8bc9f"),
    ("mnist-16.0", (MnistData, {"batch_size": 16.0}), "0290e4264e5ad54714e0301e09b8bc9f"),
    ("mnist-large", (MnistData, "~large"), "0290e4264e5ad54714e0301e09b8bc9f"),
    ("mnist-large-3", (MnistData, "~large(3)"), "f18820d8a725032cb19612144393163e"),
    ("mnist-large-kw", (MnistData, "~large(factor=3)"), "f18820d8a725032cb19612144393163e"),
    ("mnist-name", (MnistData, {"name": "emnist"}), "6c88834dac88631c0e8babfbbb68385d"),
    ("mnist-unicode", (MnistData, {"name": "ñandú ✓"}), "4bff85b32908e6458920e57104a07968"),
    ("train-default", (Train, None), "d1d9a7df723eee82aaafff7c70670216"),
    ("train-lr", (Train, {"lr": 0.01}), "dc948a622d5d8a34bc3ff70137fc687c"),
    ("train-lr-1e-3", (Train, {"lr": 1e-3}), "728b125379722b37b02e749249f7c675"),
    ("train-depth-dotted", (Train, {"model.depth": 4}), "d5673bf7d5a299b1b70cdb122b99536d"),
    ("train-depth-nested", (Train, {"model": {"depth": 4}}), "d5673bf7d5a299b1b70cdb122b99536d"),
    ("train-extra", (Train, {"extra": {"b": [1, 2], "a": {"x": None}}}), "d615562e00914b357edc451b872c2cad"),
    ("train-seed-true", (Train, {"seed": True}), "1850918a7b7aa719e828abfc490a8fe2"),
    ("train-seed-1", (Train, {"seed": 1}), "298e985415efbdb7ac3d9de79d5793f5"),
    ("train-seed-str", (Train, {"seed": "1"}), "e206a62b2490717f7de4e6fd141fc2e6"),
    ("train-negative", (Train, {"lr": -2.5, "model.width": -1}), "5202ac2118e22b0411697c96f58d3061"),
    ("train-big", (Train, {"extra": {"n": 12345678901234567890}}), "f1f29bc8648c7b95271a3161a9b114ec"),
    # floats beyond 2**63 keep their canonical form (the int that equals one is made that float)
    ("train-lr-1e20", (Train, {"lr": 1e20}), "bac2f73ab079fd962a1a74585d5fe40e"),
    ("train-huge-floats", (Train, {"extra": {"x": 1e300, "y": -2.0**70}}), "cb79acaaf64f1df91b67e77c01bd5a81"),
    ("train-huge-int", (Train, {"extra": {"n": 2**1024}}), "9d63e9c1967dde700f2beda981912280"),
    ("raw-empty", ("m", "C", {}), "c0dfaf82cb5801508bbc41b4aa56b354"),
    ("raw-nested", ("pkg.mod", "Outer.Inner", {"a": {"b": [1, 2.5, "x", None, True]}}), "119f453845a9ad2333934a4231cfeb03"),
    ("raw-reference", ("m", "User", {"data": {"$interface": "0" * 32, "class": "D", "module": "d"}}), "09765768d37a27bd43419bdcc6de3b56"),
]


def _id(case: Any) -> str:
    if isinstance(case[0], str):
        return compute_id(*case)
    cls, version = case
    return str(cls(version).id)


@pytest.mark.parametrize(("name", "case", "expected"), CASES, ids=[c[0] for c in CASES])
def test_pinned_id(name: str, case: Any, expected: str) -> None:
    assert _id(case) == expected


def test_spellings_pinned_to_the_same_id() -> None:
    by_name = {name: expected for name, _, expected in CASES}
    assert by_name["mnist-default"] == by_name["mnist-explicit-default"]
    assert by_name["mnist-16"] == by_name["mnist-16.0"] == by_name["mnist-large"]
    assert by_name["mnist-large-3"] == by_name["mnist-large-kw"]
    assert by_name["train-depth-dotted"] == by_name["train-depth-nested"]
    assert by_name["train-lr-1e20"] == _id((Train, {"lr": 10**20}))  # 1 == 1.0 at every magnitude
    assert len({by_name["train-seed-true"], by_name["train-seed-1"], by_name["train-seed-str"]}) == 3
