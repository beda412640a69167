"""`retain.gc` / `retain gc`: leftovers of killed processes always go; results go by age, state
and total size (all criteria given must hold), never a tagged one, a live component or one a
kept result uses; dry runs change nothing; errors for bad ages, sizes and states; object
stores; and SIGKILL in the middle of a gc."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import pytest

import retain
from retain import Component, Interface, Storage, get
from retain._annotations import annotate
from retain._errors import UsageError
from retain._gc import parse_age, parse_size, parse_states
from retain.cli import main
from retain.index import _updates
from retain.storage.layout import RECORD_FILE, removal_area

from conftest import WORKERS_DIR, id_directories, run_cli as cli

DEAD_PID = 99999999  # above any pid_max: never a live process


class Data(Interface):
    Config: ClassVar[Any] = {"name": "a"}


class Model(Interface):
    Config: ClassVar[Any] = {"data": None, "lr": 0.1}


class Train(Component):
    Config: ClassVar[Any] = {"n": 0, "fail": False}

    def __call__(self) -> None:
        self.save_file("weights.txt", "w" * 500)
        if self.config.fail:
            raise RuntimeError("diverged")


def data(name: str, size: int = 1000) -> Data:
    item = get(Data, {"name": name})
    item.save_file("rows.txt", "x" * size)
    return item.commit()


def train(n: int, fail: bool = False) -> Train:
    run = get(Train, {"n": n, "fail": fail})
    if fail:
        with pytest.raises(RuntimeError, match="diverged"):
            run.launch()
    else:
        run.launch()
    return run


def backdate(store: Storage, days: dict[Interface, float]) -> None:
    """Make the results look created `days` ago (the record's `created`, which is not part of
    its identity), then rebuild the index from the records."""
    for item, ago in days.items():
        path = Path(store.local_directory(item.id), RECORD_FILE)
        text = path.read_text()
        created = json.loads(text)["created"]
        then = (datetime.now(timezone.utc) - timedelta(days=ago)).isoformat(timespec="microseconds")
        path.write_text(text.replace(created, then.replace("+00:00", "Z")))
    _updates.flush()
    retain.index.rebuild(storage=store)


def committed(store: Storage) -> set[str]:
    return {id for id, directory in id_directories(store.url).items() if (directory / RECORD_FILE).is_file()}


def age(path: str, seconds: float) -> None:
    """Make `path` (and everything under it) look untouched for `seconds`."""
    then = time.time() - seconds
    for parent, dirs, names in os.walk(path):
        for name in names + dirs:
            os.utime(os.path.join(parent, name), (then, then))
    os.utime(path, (then, then))


def tree(root: str) -> dict[str, int]:
    """Every file under `root` and its size, but the index's database (a cache: reading it
    may write to its log)."""
    return {
        os.path.relpath(os.path.join(parent, name), root): os.lstat(os.path.join(parent, name)).st_size
        for parent, _, names in os.walk(root) for name in names if not name.startswith("index.sqlite")
    }


def leftovers(store: Storage) -> dict[str, str]:
    """A temporary of a killed writer in a result and in `.retain/`, an orphan directory, a
    killed removal's leftover, and what must stay: a young directory without a record and a
    temporary of a live writer."""
    kept = data("kept")
    temporary = os.path.join(kept.local_directory(), f".retain-tmp-rows.txt.{DEAD_PID}.abcdef")
    Path(temporary).write_text("partial" * 10)
    meta = os.path.join(store.url, ".retain", f".retain-tmp-journal.{DEAD_PID}.123456")
    Path(meta).write_text("p")
    orphan = get(Data, {"name": "killed commit"})
    orphan.save_file("weights.txt", "w" * 300)
    area = removal_area(store.url)
    os.makedirs(area, exist_ok=True)
    removal = os.path.join(area, f"{'e' * 32}.{DEAD_PID}.0a0b0c0d")
    os.makedirs(removal)
    Path(removal, "big.bin").write_bytes(b"z" * 200)
    for path in (temporary, meta, orphan.local_directory()):
        age(path, 2 * 3600)
    young = get(Data, {"name": "still saving"})
    young.save_file("weights.txt", "w")
    alive = os.path.join(kept.local_directory(), f".retain-tmp-live.txt.{os.getpid()}.fedcba")
    Path(alive).write_text("being written")
    age(alive, 2 * 3600)
    return {"kept": kept.id, "temporary": temporary, "meta": meta, "orphan": orphan.local_directory(),
            "removal": removal, "young": young.local_directory(), "alive": alive}


# -- leftovers of killed processes ----------------------------------------------------------------


def test_leftovers_of_killed_processes_always_go_and_results_stay(store: Storage) -> None:
    paths = leftovers(store)
    report = retain.gc()
    found = {(item.kind, item.path): item.size for item in report.leftovers}
    assert found == {
        ("temporary", paths["temporary"]): 70, ("temporary", paths["meta"]): 1,
        ("orphan", paths["orphan"]): 300, ("removal-leftover", paths["removal"]): 200,
    }
    assert report.removed == [] and report.skipped == [] and report.bytes == 571 and not report.dry_run
    for name in ("temporary", "meta", "orphan", "removal"):
        assert not os.path.exists(paths[name]), name
    for name in ("young", "alive"):  # a writer may still be at work
        assert os.path.exists(paths[name]), name
    assert committed(store) == {paths["kept"]} and get(Data, {"name": "kept"}).load_file("rows.txt") == "x" * 1000
    assert retain.gc().leftovers == []  # nothing left


def test_a_dry_run_changes_nothing(store: Storage) -> None:
    old, young = data("old", 5000), data("young")
    backdate(store, {old: 40})  # (a rebuild of the index reclaims temporaries: leftovers after it)
    paths = leftovers(store)
    before = tree(store.url)
    dry = retain.gc(older_than="30d", dry_run=True)
    assert tree(store.url) == before
    assert dry.dry_run and [item.id for item in dry.removed] == [old.id] and len(dry.leftovers) == 4
    real = retain.gc(older_than="30d")
    assert real.as_dict() == {**dry.as_dict(), "dry_run": False}  # what it said would go, went
    assert committed(store) == {young.id, paths["kept"]}


# -- selection --------------------------------------------------------------------------------------


def test_older_than_selects_by_created_time(store: Storage) -> None:
    ancient, old, young = data("ancient"), data("old"), data("young")
    backdate(store, {ancient: 400, old: 10, young: 0.5})
    assert [i.id for i in retain.gc(older_than="52w").removed] == [ancient.id]
    report = retain.gc(older_than=7 * 86400)  # seconds
    assert [item.id for item in report.removed] == [old.id] and report.removed[0].qualname == "Data"
    assert report.bytes == report.removed[0].size > 1000
    assert committed(store) == {young.id} and get.all(Data).ids() == [young.id]


def test_status_selects_components_in_those_states(store: Storage) -> None:
    finished, failed, plain = train(1), train(2, fail=True), data("plain")
    report = retain.gc(status="failed,died")
    assert [item.id for item in report.removed] == [failed.id] and report.removed[0].kind == "Component"
    assert committed(store) == {finished.id, plain.id}
    assert retain.gc(status=["finished"]).removed[0].id == finished.id
    assert committed(store) == {plain.id}  # an interface has no state: never selected by one


def test_max_size_removes_the_oldest_until_the_results_fit(store: Storage) -> None:
    items = [data(f"n{n}", 1000) for n in range(5)]
    backdate(store, {item: 10 - n for n, item in enumerate(items)})  # items[0] is the oldest
    sizes = [store.size(item.id) for item in items]
    total = sum(sizes)
    report = retain.gc(max_size=total - sizes[0] - 1)  # one byte too many without the oldest two
    assert sorted(item.id for item in report.removed) == sorted([items[0].id, items[1].id])
    assert report.bytes == sizes[0] + sizes[1]
    assert committed(store) == {item.id for item in items[2:]}
    assert retain.gc(max_size=f"{total / 1000:.3f}k").removed == []  # fits already
    assert len(retain.gc(max_size=0).removed) == 3


def test_criteria_combine_as_and(store: Storage) -> None:
    old_failed, young_failed, old_finished = train(1, fail=True), train(2, fail=True), train(3)
    backdate(store, {old_failed: 40, young_failed: 1, old_finished: 40})
    report = retain.gc(older_than="30d", status="failed")
    assert [item.id for item in report.removed] == [old_failed.id]
    assert committed(store) == {young_failed.id, old_finished.id}
    # Size: only among those the other criteria select (the old finished one here).
    assert [item.id for item in retain.gc(older_than="30d", max_size=0).removed] == [old_finished.id]
    assert committed(store) == {young_failed.id}


# -- what is never removed --------------------------------------------------------------------------


def test_a_result_used_by_a_kept_result_is_skipped_and_reported(store: Storage) -> None:
    source = data("source")
    user = get(Model, {"data": source}).commit()
    backdate(store, {source: 40, user: 1})
    report = retain.gc(older_than="30d")
    assert report.removed == [] and [(s.id, s.qualname) for s in report.skipped] == [(source.id, "Data")]
    assert f"used by {user.id}" in report.skipped[0].reason
    assert committed(store) == {source.id, user.id}
    # Both selected: the user goes first, then what it used.
    report = retain.gc(older_than="12h")
    assert [item.id for item in report.removed] == [user.id, source.id] and report.skipped == []
    assert committed(store) == set()


def test_keeping_a_user_keeps_the_chain_it_uses(store: Storage) -> None:
    source = data("source")
    model = get(Model, {"data": source}).commit()
    report_ = get(Model, {"data": model, "lr": 0.5}).commit()
    backdate(store, {source: 50, model: 40, report_: 1})
    report = retain.gc(older_than="30d")
    assert report.removed == [] and {s.id for s in report.skipped} == {source.id, model.id}
    # By size, the oldest first: the chain's inputs are kept for the kept user, the budget is
    # never met, and nothing used is removed.
    assert retain.gc(max_size=0, older_than="30d").removed == []
    assert committed(store) == {source.id, model.id, report_.id}


def test_a_tagged_result_survives_every_criterion(store: Storage) -> None:
    best, failed = data("best", 3000), train(1, fail=True)
    plain = data("plain")
    backdate(store, {best: 400, failed: 400, plain: 400})
    annotate(store, best.id, add=["best"])
    annotate(store, failed.id, add=["inspect-later"])
    report = retain.gc(older_than="30d", max_size=0)
    assert [item.id for item in report.removed] == [plain.id]
    assert sorted((s.id, s.reason) for s in report.skipped) == sorted([
        (best.id, "tagged (pinned)"), (failed.id, "tagged (pinned)"),
    ])
    for criteria in ({"older_than": 0}, {"status": "failed"}, {"max_size": 0}):
        assert retain.gc(**criteria).removed == [], criteria  # type: ignore[arg-type]
    assert committed(store) == {best.id, failed.id}
    annotate(store, failed.id, remove=["inspect-later"])  # untagged: no longer pinned
    assert [item.id for item in retain.gc(status="failed").removed] == [failed.id]
    assert committed(store) == {best.id}


def test_a_tagged_user_keeps_what_it_uses(store: Storage) -> None:
    source = data("source")
    user = get(Model, {"data": source}).commit()
    backdate(store, {source: 40, user: 40})
    annotate(store, user.id, add=["paper"])
    report = retain.gc(older_than="30d")
    reasons = {s.id: s.reason for s in report.skipped}
    assert report.removed == [] and reasons == {
        user.id: "tagged (pinned)", source.id: f"used by {user.id}, which is kept",
    }
    assert committed(store) == {source.id, user.id}


def test_a_user_committed_during_a_gc_keeps_what_it_uses(store: Storage) -> None:
    """Between the selection and the removal (another process commits meanwhile): the index
    is read again before removing, and a new user keeps the results it uses."""
    from retain._gc import _remove, _select

    source, other = data("source"), data("other")
    backdate(store, {source: 40, other: 40})
    chosen, skipped, known = _select(store, time.time() - 30 * 86400, None, None)
    assert sorted(chosen) == sorted([source.id, other.id]) and skipped == []
    late = get(Model, {"data": source}).commit()
    removed, kept = _remove(store, chosen, known, False, None)
    assert [item.id for item in removed] == [other.id]
    assert [(s.id, s.reason) for s in kept] == [(source.id, f"used by {late.id}, which is kept")]
    assert committed(store) == {source.id, late.id}


def test_a_result_tagged_during_a_gc_is_kept(store: Storage) -> None:
    from retain._gc import _remove, _select

    source = data("source")
    user = get(Model, {"data": source}).commit()
    backdate(store, {source: 40, user: 40})
    chosen, _, known = _select(store, time.time() - 30 * 86400, None, None)
    assert chosen == [user.id, source.id]
    annotate(store, user.id, add=["keep"])  # by another process, meanwhile
    removed, kept = _remove(store, chosen, known, False, None)
    assert removed == [] and [(s.id, s.reason) for s in kept] == [
        (user.id, "tagged (pinned)"), (source.id, f"used by {user.id}, which is kept"),
    ]
    assert committed(store) == {source.id, user.id}


class GcsItself(Component):
    Config: ClassVar[Any] = {"n": 0}
    seen: ClassVar[list[Any]] = []

    def __call__(self) -> None:
        GcsItself.seen.append(retain.gc(older_than=0, max_size=0))


def test_a_running_component_is_never_removed(store: Storage) -> None:
    GcsItself.seen.clear()
    old = data("old")
    run = GcsItself({"n": 1}).launch()
    [report] = GcsItself.seen
    assert [item.id for item in report.removed] == [old.id]
    assert [(s.id, s.reason.split(":")[0]) for s in report.skipped] == [(run.id, "running")]
    assert run.execution.is_finished() and committed(store) == {run.id}


# -- bad input ---------------------------------------------------------------------------------------


def test_ages_sizes_and_states_are_parsed_with_clear_errors() -> None:
    assert parse_age("30d") == 30 * 86400 and parse_age("1.5h") == 5400 and parse_age("2w") == 14 * 86400
    assert parse_age("90s") == 90 and parse_age("15m") == 900 and parse_age(12) == 12.0
    assert parse_size("50G") == 50 * 10**9 and parse_size("500MB") == 500 * 10**6 and parse_size("1.5t") == 1.5e12
    assert parse_size("2k") == 2000 and parse_size("123") == 123 and parse_size(7) == 7
    assert parse_states("failed, died") == ("failed", "died") and parse_states(["missing"]) == ("missing",)
    for text in ("30", "30x", "d", "-1d", "thirty days"):
        with pytest.raises(UsageError, match=r"is not an age: .*s \(seconds\).*e\.g\. 30d"):
            parse_age(text)
    for text in ("5Q", "G", "-5G", "5 gigabytes"):
        with pytest.raises(UsageError, match=r"is not a size: .*K, M, G or T"):
            parse_size(text)
    with pytest.raises(UsageError, match=r"unknown state\(s\) 'faild'; .*failed, died"):
        parse_states("faild,died")
    with pytest.raises(UsageError, match=r"unknown state\(s\) \(none given\)"):
        parse_states(",")
    with pytest.raises(UsageError, match="a running or queued component is never removed"):
        parse_states("running,queued")


def test_errors_come_before_anything_is_removed(store: Storage) -> None:
    paths = leftovers(store)
    with pytest.raises(UsageError, match="not a size"):
        retain.gc(older_than="1d", max_size="lots")
    assert os.path.exists(paths["orphan"])


# -- the command line ---------------------------------------------------------------------------------


def test_gc_on_the_command_line(store: Storage, capsys: pytest.CaptureFixture[str]) -> None:
    failed = train(1, fail=True)
    source = data("source")
    user = get(Model, {"data": source}).commit()
    backdate(store, {source: 40, user: 1, failed: 40})
    paths = leftovers(store)
    before = tree(store.url)
    code, out, _ = cli(capsys, "gc", "--older-than", "30d", "--dry-run")
    assert code == 0 and tree(store.url) == before
    lines = out.splitlines()
    assert f"would remove Train [{failed.id}]  test_gc  " in out and f"would remove orphan {paths['orphan']}  300 B" in out
    assert f"kept Data [{source.id}]: used by {user.id}, which is kept" in out
    assert lines[-1].startswith("would remove 1 result(s) and 4 leftover(s) of killed processes: ")
    assert lines[-1].endswith(f"in {store.url}; kept 1 selected result(s)")
    code, out, _ = cli(capsys, "gc", "--older-than", "30d", "--status", "failed", "--json")
    result = json.loads(out)
    assert code == 0 and [item["id"] for item in result["removed"]] == [failed.id] and not result["dry_run"]
    assert result["bytes"] == sum(item["size"] for item in result["removed"] + result["leftovers"])
    assert result["skipped"] == []  # the source is no component: not selected by a state
    assert committed(store) == {source.id, user.id, paths["kept"]}
    code, out, _ = cli(capsys, "gc")
    assert code == 0 and out == f"removed 0 result(s) and 0 leftover(s) of killed processes: 0 B (0 bytes) in {store.url}\n"


@pytest.mark.parametrize("words, message", [
    (["--older-than", "30"], "argument --older-than: '30' is not an age"),
    (["--max-size", "5Q"], "argument --max-size: '5Q' is not a size"),
    (["--status", "runing"], "argument --status: unknown state(s) 'runing'"),
])
def test_bad_words_are_usage_errors(store: Storage, capsys: pytest.CaptureFixture[str], words: list[str], message: str) -> None:
    code, out, err = cli(capsys, "gc", *words)
    assert code == 2 and message in err and out == ""


def test_gc_needs_an_existing_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "--storage", str(tmp_path / "nowhere"), "gc")
    assert code == 1 and "nowhere" in err and not (tmp_path / "nowhere").exists()


def test_progress_is_reported_while_looking_and_removing(store: Storage) -> None:
    for n in range(3):
        data(f"n{n}", 10)
    calls: list[tuple[int, int]] = []
    retain.gc(max_size=0, progress=lambda done, total: calls.append((done, total)))
    # Three directories looked at, then three results removed (the total grows once known).
    assert calls == [(3, 3), (3, 6), (6, 6)] and committed(store) == set()
    calls.clear()
    retain.gc(progress=lambda done, total: calls.append((done, total)))
    assert calls == []  # nothing to look at, nothing to remove


class Tty(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_the_command_line_draws_a_bar_on_a_terminal_only(
    store: Storage, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(2):
        data(f"n{n}", 10)
    code, _, err = cli(capsys, "gc", "--dry-run", "--max-size", "0")
    assert code == 0 and err == ""  # piped: no bar
    monkeypatch.setattr(sys, "stderr", Tty())
    assert main(["gc", "--max-size", "0"]) == 0
    drawn = sys.stderr.getvalue()  # type: ignore[attr-defined]
    assert drawn.startswith("\rgc [") and drawn.endswith("] 4/4\x1b[K\n") and "] 2/2" in drawn
    assert capsys.readouterr().out.splitlines()[-1].startswith("removed 2 result(s)")


# -- object stores ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "s3"])
def test_gc_on_an_object_store(kind: str, object_store: Any) -> None:
    remote = object_store(kind)
    with retain.storage(remote):
        finished, failed, plain = train(1), train(2, fail=True), data("plain")
        report = retain.gc(status="failed")
        assert [item.id for item in report.removed] == [failed.id] and report.leftovers == []
        assert not remote.has_record(failed.id) and remote.has_record(finished.id) and remote.has_record(plain.id)
        assert sorted(get.all(Interface).ids()) == sorted([finished.id, plain.id])


# -- SIGKILL in the middle of a gc ---------------------------------------------------------------------

KILLS = 10


def test_random_kills_during_gc(tmp_path: Path) -> None:
    """A worker runs `gc(max_size=0)` over results with files and users; killed at random
    times. Every id is whole or gone, the index agrees after one query, and a later gc
    finishes the job."""
    from gc_worker import FILES, populate  # type: ignore[import-not-found]  (tests/workers is on the path)

    root = tmp_path / "shared"
    rng = random.Random(5)
    env = {**os.environ, "PYTHONPATH": WORKERS_DIR}
    populate(str(root))
    with retain.storage(root):
        every = set(get.all(Interface).ids())
    killed_midway = 0
    span = 0.3  # how long after the start a kill may come: adapted to this machine's speed
    for kill in range(KILLS):
        worker = subprocess.Popen(
            [sys.executable, os.path.join(WORKERS_DIR, "gc_worker.py"), str(root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=WORKERS_DIR,
        )
        ready = Path(f"{root}.ready")
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.01)
        ready.unlink(missing_ok=True)
        time.sleep(rng.random() * span)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        directories = id_directories(root)
        left = {name for name, directory in directories.items() if (directory / RECORD_FILE).exists()}
        assert left <= every
        for name in left:  # whole: the record and every file it was committed with
            found = sorted(str(p.relative_to(directories[name])) for p in directories[name].rglob("*") if p.is_file())
            assert found == sorted([RECORD_FILE, *FILES]), name
        with retain.storage(root):
            assert set(get.all(Interface).ids()) == left, "the index lists a removed id"
            for id in left:  # nothing left is missing an input
                record = json.loads((directories[id] / RECORD_FILE).read_text())
                used = record["config"].get("item")
                assert used is None or used["$interface"] in left, f"{id} lost its input"
        killed_midway += 0 < len(left) < len(every)
        if len(left) == len(every):
            span *= 1.5  # killed before it removed anything: later next time
        if not left:
            span /= 2  # all gone before the kill: sooner next time, and start again
            populate(str(root))
    assert killed_midway > 0, "no kill landed in the middle of a gc"
    with retain.storage(root):
        retain.gc(max_size=0)
        assert get.all(Interface).ids() == []
    assert id_directories(root) == {}  # (empty shard directories stay: commits reuse them)
    assert os.listdir(removal_area(str(root))) == []
