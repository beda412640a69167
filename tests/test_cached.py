"""`retain.cached`: calls of a function as results, computed once, found again by content."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import retain
from conftest import write_module
from retain import ConfigError, Interface, get
from retain.cli import main
from retain._cached import argument_identity, array_hash, pandas_hash

FIT = '''
import os

import retain

CALLS = os.environ.get("CACHED_TEST_CALLS", "calls.txt")


@retain.cached
def fit(data, ridge=0.1):
    """Fit (counts its calls in a file)."""
    with open(CALLS, "a") as handle:
        handle.write("call\\n")
    return {"total": float(data.sum()) * ridge, "n": int(data.size)}


@retain.cached
def scale(data, factor=2.0):
    return data * factor


@retain.cached
def describe(name, *, extra=None):
    return (name, extra)
'''


def calls(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture
def fits(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CACHED_TEST_CALLS", str(tmp_path / "calls.txt"))
    write_module(project, "fits", FIT)
    return importlib.import_module("fits")


def test_a_call_is_computed_once_then_loaded(fits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(4.0)
    assert fits.fit(x, ridge=1.0) == {"total": 6.0, "n": 4}
    assert fits.fit(x, ridge=1.0) == {"total": 6.0, "n": 4}
    assert calls(tmp_path / "calls.txt") == 1
    assert fits.fit(x, ridge=2.0) == {"total": 12.0, "n": 4}
    assert calls(tmp_path / "calls.txt") == 2


def test_defaults_are_applied_so_equal_calls_are_one_identity(fits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(3.0)
    fits.fit(x)
    fits.fit(x, ridge=0.1)
    fits.fit(data=x, ridge=0.1)
    assert calls(tmp_path / "calls.txt") == 1
    assert fits.fit.get(x) == fits.fit.get(x, ridge=0.1)
    assert fits.fit.get(x).config.arguments.ridge == 0.1
    assert fits.fit.get(x).config.function == "fits:fit"


def test_the_result_is_stored_by_its_type(fits) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(3.0)
    fits.fit(x)
    assert "result.json" in fits.fit.get(x).files()
    doubled = fits.scale(x)
    np.testing.assert_array_equal(doubled, [0.0, 2.0, 4.0])
    assert "result.npy" in fits.scale.get(x).files()
    np.testing.assert_array_equal(fits.scale(x), [0.0, 2.0, 4.0])  # the hit: loaded
    assert fits.describe("a", extra=[1, 2]) == ("a", [1, 2])
    assert "result.p" in fits.describe.get("a", extra=[1, 2]).files()
    assert fits.describe("a", extra=[1, 2]) == ("a", [1, 2])


def test_a_dict_that_json_would_change_is_pickled(project: Path) -> None:
    write_module(project, "intkeys", "import retain\n\n@retain.cached\ndef f(n):\n    return {n: n}\n")
    f = importlib.import_module("intkeys").f
    assert f(3) == {3: 3}
    assert f(3) == {3: 3}  # int keys kept: not through JSON
    assert "result.p" in f.get(3).files()


def test_a_call_inside_an_execution_block_runs_at_once_here(fits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(3.0)
    with get("retain.execution.local"):
        assert fits.fit(x, ridge=2.0) == {"total": 6.0, "n": 3}  # not queued: the value now
    assert calls(tmp_path / "calls.txt") == 1


def test_a_failed_call_raises_and_the_next_call_computes_again(project: Path, tmp_path: Path) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    write_module(project, "flaky", f"""
import os, retain

@retain.cached
def flaky(n):
    if os.path.exists({str(flag)!r}):
        raise ValueError("not yet")
    return [n]
""")
    flaky = importlib.import_module("flaky").flaky
    with pytest.raises(ValueError, match="not yet"):
        flaky(1)
    assert flaky.get(1).execution.is_failed()
    flag.unlink()
    assert flaky(1) == [1]
    assert flaky(1) == [1] and flaky.get(1).cached()


def test_variadic_arguments_and_numpy_scalars(project: Path) -> None:
    write_module(project, "variadic", "import retain\n\n@retain.cached\ndef f(*args, scale=1, **kw):\n    return [list(args), scale, kw]\n")
    f = importlib.import_module("variadic").f
    assert f(1, 2, scale=3, name="a") == [[1, 2], 3, {"name": "a"}]
    assert f.get(1, 2, scale=3, name="a").config.arguments.to_dict() == {"args": [1, 2], "kw": {"name": "a"}, "scale": 3}
    assert f.get(np.int64(1), 2, scale=3, name="a").is_committed()  # a numpy scalar is its value
    assert not f.get(1, 2, scale=3, name="b").is_committed()


def test_get_returns_the_interface_committed_or_not(fits) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(5.0)
    before = fits.fit.get(x, ridge=3.0)
    assert isinstance(before, Interface) and not before.is_committed()
    fits.fit(x, ridge=3.0)
    after = fits.fit.get(x, ridge=3.0)
    assert after.is_committed() and after.cached() and after == before
    assert after.record["module"] == "fits" and after.record["class"] == "fit.component"
    assert after.result() == {"total": 30.0, "n": 5}
    assert get.by_id(after.id) == after  # found again by id, as any result


def test_a_deleted_call_is_computed_again(fits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    x = np.arange(2.0)
    fits.fit(x)
    fits.fit.get(x).delete()
    assert not fits.fit.get(x).is_committed()
    assert fits.fit(x) == {"total": 0.1, "n": 2}
    assert calls(tmp_path / "calls.txt") == 2


def test_array_hash_is_content_dtype_and_shape() -> None:
    a = np.arange(6, dtype=np.float64)
    assert array_hash(a) == array_hash(a.copy())
    assert array_hash(a) != array_hash(a + 1)
    assert array_hash(a) != array_hash(a.astype(np.float32))
    assert array_hash(a) != array_hash(a.reshape(2, 3))
    strided = np.arange(12.0)[::2]  # not contiguous: hashed as its values
    assert array_hash(strided) == array_hash(np.ascontiguousarray(strided))
    assert array_hash(a.reshape(2, 3).T) == array_hash(np.ascontiguousarray(a.reshape(2, 3).T))


def test_pandas_hash_is_content_index_columns_and_dtypes() -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})
    assert pandas_hash(frame) == pandas_hash(frame.copy())
    assert pandas_hash(frame) != pandas_hash(frame.assign(b=[0.5, 1.5, 9.0]))
    assert pandas_hash(frame) != pandas_hash(frame.rename(columns={"b": "c"}))
    assert pandas_hash(frame) != pandas_hash(frame.astype({"a": "float64"}))
    assert pandas_hash(frame) != pandas_hash(frame.set_axis([10, 11, 12]))
    series = pd.Series([1.0, 2.0], name="x")
    assert pandas_hash(series) == pandas_hash(series.copy())
    assert pandas_hash(series) != pandas_hash(series.rename("y"))
    assert pandas_hash(series) != pandas_hash(pd.Series([1.0, 3.0], name="x"))
    assert pandas_hash(pd.Index([1, 2])) != pandas_hash(pd.Index([1, 3]))


def test_pandas_arguments_identify_calls(project: Path, tmp_path: Path) -> None:
    write_module(project, "frames", "import retain\n\n@retain.cached\ndef total(frame):\n    return [float(frame.to_numpy().sum())]\n")
    total = importlib.import_module("frames").total
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    assert total(frame) == [3.0]
    assert total.get(frame.copy()).is_committed()
    assert not total.get(frame * 2).is_committed()
    assert total(frame * 2) == [6.0]


def test_unsupported_arguments_name_the_argument_and_the_kinds(fits) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"argument 'data' of fits:fit is a builtins.object.*Accepted: JSON values"):
        fits.fit(object())
    with pytest.raises(ConfigError, match=r"argument 'extra' .* a key 1 of type int"):
        fits.describe("a", extra={1: "x"})
    with pytest.raises(ConfigError, match="Python objects"):
        fits.fit(np.array([object()]))
    with pytest.raises(TypeError, match=r"fits:fit\(\): missing a required argument: 'data'"):
        fits.fit()


def test_json_values_and_interfaces_as_arguments(project: Path) -> None:
    write_module(project, "uses", '''
import retain
from retain import Interface

class Data(Interface):
    Config = {"n": 3}

@retain.cached
def size(data, options):
    return {"n": data.config.n, "options": options}
''')
    uses = importlib.import_module("uses")
    data = get(uses.Data, {"n": 5})
    assert uses.size(data, {"deep": [1, (2, 3)]}) == {"n": 5, "options": {"deep": [1, (2, 3)]}}
    call = uses.size.get(data, {"deep": [1, [2, 3]]})  # a tuple is a list: one identity
    assert call.is_committed() and data.is_committed()  # an input, committed with it
    assert call.config.arguments.data == data
    assert argument_identity(np.float64(2.5), "x") == 2.5


TWICE = '''
import os, sys, time

import numpy as np
import retain

@retain.cached
def slow(n):
    with open(os.environ["CACHED_TEST_CALLS"], "a") as handle:
        handle.write("call\\n")
    time.sleep(1.0)
    return np.arange(n)

if __name__ == "__main__":
    while not os.path.exists(os.environ["CACHED_TEST_GO"]):
        time.sleep(0.01)
    print(slow(int(sys.argv[1])).tolist())
'''


def test_two_processes_calling_at_once_compute_once(project: Path, tmp_path: Path) -> None:
    write_module(project, "twice", TWICE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(project), os.environ.get("PYTHONPATH")) if p),
        "RETAIN_STORAGE": str(tmp_path / "shared"),
        "CACHED_TEST_CALLS": str(tmp_path / "calls.txt"),
        "CACHED_TEST_GO": str(tmp_path / "go"),
    }
    workers = [
        subprocess.Popen([sys.executable, "-m", "twice", "4"], env=env, cwd=project,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    (tmp_path / "go").touch()
    outputs = [worker.communicate(timeout=120) for worker in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
        assert out.strip() == "[0, 1, 2, 3]"
    assert calls(tmp_path / "calls.txt") == 1


# Provenance is read once per process and module name: each test below has its own module.
def test_stale_reports_a_source_change_and_a_hit_still_loads(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHED_TEST_CALLS", str(tmp_path / "calls.txt"))
    path = write_module(project, "fits_stale", FIT)
    fits = importlib.import_module("fits_stale")
    x = np.arange(4.0)
    fits.fit(x)
    call = fits.fit.get(x)
    assert call.record["provenance"]["source_file"] == str(path)
    assert retain.stale() == []
    path.write_text(FIT.replace("Fit (counts", "Fit, edited (counts"))
    found = retain.stale()
    assert [(result.id, result.qualname, result.kinds) for result in found] == [(call.id, "fit.component", ["source"])]
    assert str(path) in found[0].reasons[0]["message"]
    assert fits.fit(x) == {"total": 0.6000000000000001, "n": 4}  # the stored value, not recomputed
    assert calls(tmp_path / "calls.txt") == 1


def test_stale_from_the_command_line_names_the_call(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CACHED_TEST_CALLS", str(tmp_path / "calls.txt"))
    path = write_module(project, "fits_cli", FIT)
    fits = importlib.import_module("fits_cli")
    fits.fit(np.arange(2.0))
    path.write_text(FIT + "\n# edited\n")
    main(["stale"])
    out = capsys.readouterr().out
    assert "fit.component" in out and "changed since" in out


def test_calls_on_an_object_store(fits, s3_env: dict[str, str], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from conftest import new_url

    x = np.arange(4.0)
    with retain.storage(new_url(s3_env)):
        assert fits.scale(x) is not None and fits.fit(x, ridge=1.0) == {"total": 6.0, "n": 4}
        np.testing.assert_array_equal(fits.scale(x), [0.0, 2.0, 4.0, 6.0])  # hits, from the store
        assert fits.fit(x, ridge=1.0) == {"total": 6.0, "n": 4}
        assert "result.json" in fits.fit.get(x, ridge=1.0).files()
    assert calls(tmp_path / "calls.txt") == 1


def test_a_cached_function_pickles_by_reference(fits) -> None:  # type: ignore[no-untyped-def]
    import pickle

    assert pickle.loads(pickle.dumps(fits.fit)) is fits.fit
    assert repr(fits.fit) == "<retain.cached fits:fit>" and fits.fit.__doc__ == "Fit (counts its calls in a file)."


def test_cached_is_exported_lazily() -> None:
    assert retain.cached is importlib.import_module("retain._cached").cached
    assert "cached" in retain.__all__ and "cached" in dir(retain)
