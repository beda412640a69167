"""Identity baselines: a changed default gives a new identity, the old result stays found by
its value, an added key keeps every id; each step in a fresh process with the module edited
in between, as a researcher's loop goes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path


import retain
from retain import Interface, get
from retain import _baselines
from retain.storage import make_storage

from conftest import id_directories, new_url

FIXTURE = Path(__file__).parent / "data" / "legacy_storage"


def _env(storage: Path | str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    env["RETAIN_STORAGE"] = str(storage)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # an edited module is never read from a stale .pyc
    return env


def write_module(project: Path, config: str, name: str = "train") -> None:
    (project / f"{name}.py").write_text(textwrap.dedent(f"""\
        from retain import Interface

        class Train(Interface):
            Config = {config}
        """))


def run(project: Path, storage: Path, code: str) -> dict:
    """Run `code` in a fresh process in `project`; it prints one JSON line, returned."""
    prelude = "import json\nfrom retain import get\nfrom train import Train\n"
    done = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=project, env=_env(storage), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


STATE = """
def state(i):
    return {"id": i.id, "committed": i.is_committed(), "config": i.config.to_dict()}
"""


def test_the_research_loop_of_changing_defaults(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    write_module(tmp_path, '{"a": 1, "holdout": 0.2}')
    a = run(tmp_path, storage, "print(json.dumps({'id': get(Train).commit().id}))")["id"]

    write_module(tmp_path, '{"a": 1, "holdout": 0.25}')
    v2 = run(tmp_path, storage, STATE + """
import warnings
warnings.simplefilter("error")
print(json.dumps({
    "default": state(get(Train)),
    "explicit": state(get(Train, {"holdout": 0.25})),
    "old": state(get(Train, {"holdout": 0.2})),
    "fresh": Train().id,
}))
""")
    b = v2["default"]["id"]
    assert b != a and not v2["default"]["committed"]
    assert v2["default"]["config"] == {"a": 1, "holdout": 0.25}
    assert v2["explicit"]["id"] == b == v2["fresh"]
    assert v2["old"] == {"id": a, "committed": True, "config": {"a": 1, "holdout": 0.2}}
    assert run(tmp_path, storage, "print(json.dumps({'id': get(Train).commit().id}))")["id"] == b
    both = run(tmp_path, storage, STATE + """
print(json.dumps({"a": state(get(Train, {"holdout": 0.2})), "b": state(get(Train, {"holdout": 0.25}))}))
""")
    assert (both["a"]["id"], both["a"]["committed"]) == (a, True)
    assert (both["b"]["id"], both["b"]["committed"]) == (b, True)

    write_module(tmp_path, '{"a": 1, "holdout": 0.25, "l2": 0.0}')
    v3 = run(tmp_path, storage, STATE + """
print(json.dumps({
    "a": state(get(Train, {"holdout": 0.2})),
    "a_l2": state(get(Train, {"holdout": 0.2, "l2": 0.0})),
    "b": state(get(Train)),
    "b_l2": state(get(Train, {"l2": 0})),
    "other": state(get(Train, {"l2": 0.5})),
}))
""")
    for key, expected in (("a", a), ("a_l2", a), ("b", b), ("b_l2", b)):
        assert v3[key]["id"] == expected and v3[key]["committed"], key
    # A reloaded result has the added key at its baseline: what its identity stands for.
    assert v3["a"]["config"] == {"a": 1, "holdout": 0.2, "l2": 0.0}
    assert v3["other"]["id"] not in (a, b) and not v3["other"]["committed"]

    write_module(tmp_path, '{"a": 1, "holdout": 0.2, "l2": 0.0}')
    v4 = run(tmp_path, storage, STATE + "print(json.dumps(state(get(Train))))")
    assert v4["id"] == a and v4["committed"]


def test_stale_still_reports_results_computed_under_other_defaults(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    write_module(tmp_path, '{"a": 1, "holdout": 0.2}')
    a = run(tmp_path, storage, "print(json.dumps({'id': get(Train).commit().id}))")["id"]
    write_module(tmp_path, '{"a": 1, "holdout": 0.2, "l2": 0.0}')
    added = run(tmp_path, storage, """
import retain
print(json.dumps([s.to_dict() for s in retain.stale(Train)]))
""")
    # An added key is not a changed default: the result's identity stands for l2 = 0.0.
    assert all("defaults" not in [r["kind"] for r in s["reasons"]] for s in added)
    write_module(tmp_path, '{"a": 1, "holdout": 0.25, "l2": 0.0}')
    found = run(tmp_path, storage, """
import retain
print(json.dumps([s.to_dict() for s in retain.stale(Train)]))
""")
    reasons = {r["kind"]: r for s in found if s["id"] == a for r in s["reasons"]}
    assert reasons["defaults"]["changes"] == [{"key": "holdout", "stored": "0.2", "now": "0.25"}]
    assert "identity" in reasons


def test_baselines_are_recorded_once_and_rebuilt_from_the_records(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    write_module(tmp_path, '{"a": 1, "holdout": 0.2, "model": {"depth": 2}}')
    ids = run(tmp_path, storage, """
print(json.dumps([get(Train, v).commit().id for v in ({}, {"a": 2}, {"model.depth": 3})]))
""")
    files = sorted(p.name for p in (storage / ".retain" / "baselines").iterdir())
    assert len(files) == 2 and "ready.json" in files  # one version for the class, and ready
    record = json.loads((id_directories(storage)[ids[0]] / "interface.json").read_text())
    assert record["baseline"] == {"a": 1, "holdout": 0.2, "model": {"depth": 2}}
    # The baselines are the storage's: lost, they come back from the records.
    write_module(tmp_path, '{"a": 1, "holdout": 0.3, "model": {"depth": 5}}')
    shutil.rmtree(storage / ".retain" / "baselines")
    again = run(tmp_path, storage, """
print(json.dumps([get(Train, v).id for v in ({"holdout": 0.2, "model.depth": 2}, {"a": 2, "holdout": 0.2, "model.depth": 2}, {"holdout": 0.2, "model.depth": 3})]))
""")
    assert again == ids


def test_an_added_key_below_an_open_mapping_is_not_a_baseline(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    write_module(tmp_path, '{"opts": {}}')
    ids = run(tmp_path, storage, """
print(json.dumps([get(Train, v).commit().id for v in ({}, {"opts": {"x": 1}})]))
""")
    write_module(tmp_path, '{"opts": {"x": 1}}')
    found = run(tmp_path, storage, """
print(json.dumps({"default": get(Train).id, "empty": get(Train, {"opts": {}}).id}))
""")
    # {"opts": {}} meant "no x" under the open mapping, never "x at its default".
    assert found["default"] == ids[1]
    assert found["default"] != ids[0]


RACER = """
import sys, time
start = float(sys.argv[1])
while time.time() < start:
    pass
t = get(Train).commit()
print(json.dumps({"id": t.id, "holdout": t.config.holdout}))
"""


def race(tmp_path: Path, storage: str, round: int, env: dict[str, str] | None = None) -> list[dict]:
    """Two processes, one with holdout 0.2 and one with 0.25 as its default, commit at once."""
    procs = []
    start = time.time() + 2.0
    for holdout in (0.2, 0.25):
        project = tmp_path / f"p{round}-{holdout}"
        project.mkdir()
        write_module(project, f'{{"a": 1, "holdout": {holdout}}}')
        prelude = "import json\nfrom retain import get\nfrom train import Train\n"
        procs.append(subprocess.Popen(
            [sys.executable, "-c", prelude + RACER, str(start)],
            cwd=project, env={**_env(storage), **(env or {}), "RETAIN_CACHE_DIR": str(project / "cache")},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["id"] != results[1]["id"]
    assert sorted(r["holdout"] for r in results) == [0.2, 0.25]
    return results


def test_two_versions_of_the_code_committing_at_once_never_share_an_id(tmp_path: Path) -> None:
    for round in range(6):
        storage = tmp_path / f"storage{round}"
        for result in race(tmp_path, str(storage), round):
            record = json.loads((id_directories(storage)[result["id"]] / "interface.json").read_text())
            assert record["config"]["holdout"] == result["holdout"]


def test_two_versions_of_the_code_committing_at_once_on_an_object_store(
    tmp_path: Path, s3_env: dict[str, str]
) -> None:
    env = {name: os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED")}
    for round in range(3):
        url = new_url(s3_env)
        results = race(tmp_path, url, round, env)
        store = make_storage(url)
        for result in results:
            record = json.loads(store.read_record(result["id"]) or b"null")
            assert record["config"]["holdout"] == result["holdout"]


def test_an_uncommitted_id_moves_when_another_process_recorded_other_defaults(tmp_path: Path) -> None:
    """The id computed before any baseline was recorded is provisional: a commit that finds
    other baselines recorded meanwhile takes the id those give, with the files saved so far."""

    class Racing(Interface):
        Config = {"holdout": 0.25}

    with retain.storage(tmp_path / "s"):
        mine = Racing()
        early = mine.id
        mine.save_file("notes.txt", "kept")
        # Another process, whose code said 0.2, commits first.
        Racing.Config = {"holdout": 0.2}
        _baselines.reset_cache()
        theirs = Racing().commit()
        Racing.Config = {"holdout": 0.25}
        _baselines.reset_cache()
        assert theirs.id == early  # both computed {} as their canonical config
        assert not mine.is_committed() and mine.record is None  # theirs is not mine
        assert mine.id != early
        mine.commit()
        assert mine.id != early and mine.config.holdout == 0.25
        assert get(Racing).id == mine.id and get(Racing, {"holdout": 0.2}) == theirs
        assert mine.load_file("notes.txt") == "kept"
        assert get(Racing, {"holdout": 0.2}).config.holdout == 0.2


# -- storages written by the release before baselines ----------------------------------------


def _legacy_copy(tmp_path: Path) -> Path:
    storage = tmp_path / "storage"
    shutil.copytree(FIXTURE / "storage", storage)
    shutil.copy(FIXTURE / "legacy_train.py", tmp_path / "legacy_train.py")
    return storage


def test_a_storage_of_the_previous_release_keeps_its_ids(tmp_path: Path) -> None:
    storage = _legacy_copy(tmp_path)
    expected = json.loads((FIXTURE / "ids.json").read_text())
    prelude = "import json\nfrom retain import get\nfrom legacy_train import Train\n"

    def legacy(code: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", prelude + textwrap.dedent(code)],
            cwd=tmp_path, env=_env(storage), capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    found = legacy("""
print(json.dumps({name: [get(Train, v).id, get(Train, v).is_committed()] for name, v in (
    ("default", {}), ("holdout", {"holdout": 0.3}), ("deep", {"model.depth": 4}),
)}))
""")
    for name, id in expected.items():
        assert found[name] == [id, True], name
    assert not (storage / ".retain" / "baselines").exists()  # get never writes
    listed = legacy("print(json.dumps(sorted(get.all(Train).ids())))")
    assert sorted(listed) == sorted(expected.values())
    # The first commit migrates: baselines from the records, then the new record.
    new = legacy("print(json.dumps({'id': get(Train, {'a': 7}).commit().id}))")["id"]
    assert (storage / ".retain" / "baselines" / "ready.json").is_file()
    again = legacy("""
print(json.dumps({name: get(Train, v).id for name, v in (
    ("default", {}), ("holdout", {"holdout": 0.3}), ("deep", {"model.depth": 4}), ("new", {"a": 7}),
)}))
""")
    assert again == {**expected, "new": new}


def test_a_changed_default_in_a_storage_of_the_previous_release(tmp_path: Path) -> None:
    storage = _legacy_copy(tmp_path)
    expected = json.loads((FIXTURE / "ids.json").read_text())
    source = (tmp_path / "legacy_train.py").read_text()
    (tmp_path / "legacy_train.py").write_text(source.replace('"holdout": 0.2', '"holdout": 0.25'))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent("""
            import json
            from retain import get
            from legacy_train import Train
            print(json.dumps({"default": get(Train).id, "committed": get(Train).is_committed(),
                              "old": get(Train, {"holdout": 0.2}).id}))
        """)],
        cwd=tmp_path, env=_env(storage), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["old"] == expected["default"]
    assert found["default"] != expected["default"] and not found["committed"]
