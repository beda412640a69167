"""Files by extension: the built-in codecs, the registry, and what goes wrong."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest

import retain
from retain import Codec, CodecError, Interface, get


class Holder(Interface):
    Config = {"a": 1}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("prediction.txt", "a string ✓\nsecond line"),
        ("windows.txt", "line\r\nother\rlast"),
        ("notes.md", "# title"),
        ("settings.json", {"neurons": [1, 2], "name": "x", "none": None}),
        ("rows.jsonl", [{"a": 1}, [2, 3], "x", None]),
        ("results.p", {"tuple": (1, 2), "set": {3}}),
        ("results.pkl", [1.5, object.__name__]),
        ("results.pickle", b"bytes"),
    ],
)
def test_round_trips(name: str, value: Any) -> None:
    holder = get(Holder)
    holder.save_file(name, value)
    assert holder.load_file(name) == value
    holder.commit()
    assert Interface.from_directory(holder.local_directory()).load_file(name) == value


def test_numpy_round_trips() -> None:
    holder = get(Holder)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    holder.save_file("inputs.npy", array)
    loaded = holder.load_file("inputs.npy")
    assert loaded.dtype == np.float32 and np.array_equal(loaded, array)
    holder.save_file("many.npz", {"x": array, "y": np.array([1, 2])})
    many = holder.load_file("many.npz")
    assert set(many) == {"x", "y"} and np.array_equal(many["y"], [1, 2])
    holder.save_file("np.json", {"a": np.float64(1.5), "b": np.arange(3)})
    assert holder.load_file("np.json") == {"a": 1.5, "b": [0, 1, 2]}


def test_extension_is_case_insensitive_and_longest_wins() -> None:
    class Gzip(Codec):
        extensions = ("json.gz",)

        def write(self, handle: BinaryIO, value: Any) -> None:
            import gzip
            import json

            handle.write(gzip.compress(json.dumps(value).encode()))

        def read(self, path: str) -> Any:
            import gzip
            import json

            with open(path, "rb") as f:
                return json.loads(gzip.decompress(f.read()))

    retain.register_codec(Gzip())
    holder = get(Holder)
    holder.save_file("data.json.gz", {"z": 1})
    with open(holder.local_directory("data.json.gz"), "rb") as f:
        assert f.read(2) == b"\x1f\x8b"
    assert holder.load_file("data.json.gz") == {"z": 1}
    holder.save_file("UPPER.JSON", [1])
    assert holder.load_file("UPPER.JSON") == [1]


def test_registry_refuses_silent_replacement() -> None:
    class Txt(Codec):
        extensions = ("txt",)

        def write(self, handle: BinaryIO, value: Any) -> None:
            handle.write(b"custom")

        def read(self, path: str) -> Any:
            return "custom"

    with pytest.raises(CodecError, match="already use TextCodec.*replace=True"):
        retain.register_codec(Txt())
    with pytest.raises(CodecError, match="expected a Codec"):
        retain.register_codec(object())  # type: ignore[arg-type]


def test_unknown_extension_lists_known_ones(store: retain.Storage) -> None:
    with pytest.raises(CodecError, match=r"no codec for 'model.weights'.*\.json.*register_codec"):
        get(Holder).save_file("model.weights", b"")
    with pytest.raises(CodecError):
        get(Holder).save_file("no_extension", "x")
    assert not os.path.exists(store.url)


def test_values_that_do_not_fit_leave_no_file() -> None:
    holder = get(Holder)
    holder.save_file("keep.txt", "original")
    with pytest.raises(CodecError, match="text files hold a str"):
        holder.save_file("keep.txt", 42)
    with pytest.raises(CodecError, match="cannot save as JSON"):
        holder.save_file("bad.json", {"f": object()})
    with pytest.raises(CodecError, match="sequence"):
        holder.save_file("bad.jsonl", {"a": 1})
    with pytest.raises(CodecError, match="mapping of names"):
        holder.save_file("bad.npz", [1])
    assert holder.load_file("keep.txt") == "original"
    assert sorted(os.listdir(holder.local_directory())) == ["keep.txt"]


def test_numpy_is_optional(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "import retain\n"
        "class H(retain.Interface):\n    Config = {}\n"
        "h = H(); h.save_file('a.json', [1]); print(h.load_file('a.json'))\n"
        "try:\n    h.save_file('a.npy', [1])\nexcept retain.CodecError as e:\n    print(e)\n"
    )
    env = {**os.environ, "RETAIN_STORAGE": str(tmp_path / "s")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[1]", "numpy is needed for .npy and .npz files: pip install 'retain[numpy]'"]


@pytest.mark.parametrize(
    ("name", "value", "damage"),
    [
        ("a.json", {"x": [1, 2]}, b'{"x": [1,'),
        ("a.jsonl", [{"x": 1}], b'{"x": [1, 2,\n'),
        ("a.txt", "text", b"\xff\xfe\xfa"),
        ("a.p", {"x": 1}, b"\x80\x05\x95garbage"),
        ("a.pkl", {"x": 1}, b""),
        ("a.npy", np.arange(4), b"\x93NUMPY\x01\x00garbage"),
        ("b.npy", np.arange(4), b"not numpy at all"),
        ("a.npz", {"x": np.arange(4)}, b"PK\x03\x04broken zip"),
        ("b.npz", {"x": np.arange(4)}, b"\x93NUMPY\x01\x00v\x00{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }"),
    ],
)
def test_a_damaged_file_is_a_codec_error_naming_it(name: str, value: Any, damage: bytes) -> None:
    holder = get(Holder).commit()
    path = holder.save_file(name, value)
    Path(path).write_bytes(damage)
    with pytest.raises(CodecError, match="damaged") as info:
        holder.load_file(name)
    assert path in str(info.value)
    Path(path).write_bytes(damage[: len(damage) // 2])  # truncated too
    with pytest.raises(CodecError, match="damaged"):
        holder.load_file(name)
