"""Reliability: a stateful model of storage, full and read-only disks, and fuzzed bad input.

Each test here checks an invariant of docs/design.md (Principles): nothing committed is lost or
silently replaced, a failed operation leaves storage as it was, bad input gets a clear error.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import retain
from retain import Interface, RetainError, get
from retain.cli import main as cli_main
from retain.storage import make_storage


class Item(Interface):
    Config = {"k": 0, "tag": "x"}


# -- a stateful model: commit / get / save_file / delete / rebuild ---------------------------


class StorageModel(RuleBasedStateMachine):
    """Drives storage in random order against a dict of what should be there."""

    def __init__(self) -> None:
        super().__init__()
        self.committed: dict[int, str] = {}  # k -> id
        self.files: dict[tuple[int, str], Any] = {}
        self.scope: contextlib.ExitStack | None = None

    @initialize()
    def open_storage(self) -> None:
        import tempfile

        self.root = tempfile.mkdtemp(prefix="retain-model-")
        self.scope = contextlib.ExitStack()
        self.scope.enter_context(retain.storage(self.root))

    def teardown(self) -> None:
        if self.scope is not None:
            self.scope.close()
            shutil.rmtree(self.root, ignore_errors=True)

    @rule(k=st.integers(0, 6))
    def commit(self, k: int) -> None:
        item = get(Item, {"k": k}).commit()
        assert self.committed.setdefault(k, item.id) == item.id

    @rule(k=st.integers(0, 6))
    def get_agrees(self, k: int) -> None:
        assert get(Item, {"k": k}).is_committed() == (k in self.committed)

    @rule(k=st.integers(0, 6), name=st.sampled_from(["a.json", "b.txt", "sub/c.p"]), value=st.integers())
    def save_file(self, k: int, name: str, value: int) -> None:
        item = get(Item, {"k": k})  # committed or not: replacing a file is what this step does
        item.save_file(name, value if not name.endswith(".txt") else str(value), overwrite=True)
        self.files[(k, name)] = value

    @rule(k=st.integers(0, 6))
    def delete_by_hand(self, k: int) -> None:
        directory = Item({"k": k}).local_directory()
        shutil.rmtree(directory, ignore_errors=True)
        self.committed.pop(k, None)
        for key in [key for key in self.files if key[0] == k]:
            del self.files[key]

    @rule()
    def rebuild(self) -> None:
        assert retain.index.rebuild() == len(self.committed)

    @invariant()
    def index_agrees(self) -> None:
        if self.scope is None:
            return
        assert {item.id for item in get.all(Item)} == set(self.committed.values())

    @invariant()
    def files_agree(self) -> None:
        if self.scope is None:
            return
        for (k, name), value in self.files.items():
            loaded = get(Item, {"k": k}).load_file(name)
            assert loaded == (value if not name.endswith(".txt") else str(value))
        for k, id in self.committed.items():
            assert Interface.from_directory(make_storage(self.root).local_directory(id)) == Item({"k": k})


StorageModel.TestCase.settings = settings(
    max_examples=25, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
test_storage_agrees_with_its_model = StorageModel.TestCase


class TwoMachinesModel(RuleBasedStateMachine):
    """Two machines (two caches) share one object store and commit, save, read, delete and
    rebuild in random order: each always reads what the store holds, whoever wrote it last."""

    def __init__(self) -> None:
        super().__init__()
        self.committed: dict[int, str] = {}
        self.files: dict[tuple[int, str], Any] = {}
        self.machines: list[Any] = []

    @initialize()
    def open_store(self) -> None:
        import tempfile
        import uuid

        from retain.index import base as index_base
        from retain.storage.fsspec import FsspecStorage

        self.saved_relist = index_base.RELIST_NS
        index_base.RELIST_NS = 0  # every query lists the store: the other machine's commits show
        self.caches = tempfile.mkdtemp(prefix="retain-machines-")
        url = f"memory://model-{uuid.uuid4().hex[:12]}"
        self.machines = [FsspecStorage(url, cache_dir=os.path.join(self.caches, name)) for name in "AB"]

    def teardown(self) -> None:
        if self.machines:
            from retain.index import base as index_base

            index_base.RELIST_NS = self.saved_relist
            store = self.machines[0]
            if store.fs.exists(store.root):
                store.fs.rm(store.root, recursive=True)
            shutil.rmtree(self.caches, ignore_errors=True)

    @rule(k=st.integers(0, 4), m=st.integers(0, 1))
    def commit(self, k: int, m: int) -> None:
        item = get(Item, {"k": k}, storage=self.machines[m]).commit()
        assert self.committed.setdefault(k, item.id) == item.id

    @rule(k=st.integers(0, 4), m=st.integers(0, 1), name=st.sampled_from(["a.json", "sub/b.p"]),
          value=st.integers())
    def save_file(self, k: int, m: int, name: str, value: int) -> None:
        item = get(Item, {"k": k}, storage=self.machines[m]).commit()
        item.save_file(name, value, overwrite=True)
        self.committed[k] = item.id
        self.files[(k, name)] = value

    @rule(k=st.integers(0, 4))
    def delete_from_the_store(self, k: int) -> None:
        store = self.machines[0]
        key = store._key(Item({"k": k}).id)
        if store.fs.exists(key):
            store.fs.rm(key, recursive=True)
        self.committed.pop(k, None)
        for entry in [entry for entry in self.files if entry[0] == k]:
            del self.files[entry]

    @rule(m=st.integers(0, 1))
    def rebuild(self, m: int) -> None:
        with retain.storage(self.machines[m]):
            assert retain.index.rebuild() == len(self.committed)

    @invariant()
    def both_machines_read_the_store(self) -> None:
        for machine in self.machines:
            for (k, name), value in self.files.items():
                assert get(Item, {"k": k}, storage=machine).load_file(name) == value
            assert set(get.all(Item, storage=machine).ids()) == set(self.committed.values())


TwoMachinesModel.TestCase.settings = settings(
    max_examples=15, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
test_two_machines_on_one_store_agree_with_the_model = TwoMachinesModel.TestCase


# -- full and read-only disks ---------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small file system of our own, so that filling it harms nothing else."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".retain" not in p.relative_to(root).parts
    }


def test_disk_full_leaves_storage_as_it_was(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small", "256k") as root, retain.storage(root / "s"):
        kept = get(Item, {"k": 1}).commit()
        kept.save_file("a.json", {"ok": True})
        before = _snapshot(root / "s")
        filler = root / "filler"
        with open(filler, "wb", buffering=0) as handle:  # fill the disk to the last block
            with contextlib.suppress(OSError):
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
        item = get(Item, {"k": 2})
        with pytest.raises(retain.StorageError, match="No space left|could not") as info:
            item.save_file("big.npy", [0.0] * 100_000)
            item.commit()
        assert isinstance(info.value, OSError)
        with pytest.raises(retain.StorageError):
            item.commit()
        after = _snapshot(root / "s")
        assert {k: v for k, v in after.items() if k in before} == before
        assert not any(name.endswith("interface.json") for name in set(after) - set(before))
        assert not list((root / "s").rglob(".retain-tmp-*"))
        filler.unlink()
        assert get(Item, {"k": 1}).load_file("a.json") == {"ok": True}
        assert get(Item, {"k": 2}).commit().is_committed()  # space again: it works


def test_disk_full_while_saving_an_array_says_no_space_left(tmp_path: Path) -> None:
    # numpy writes arrays with fwrite, whose short write reaches Python without an errno.
    np = pytest.importorskip("numpy")
    with tmpfs(tmp_path / "tiny", "64k") as root, retain.storage(root / "s"):
        item = get(Item, {"k": 3})
        with pytest.raises(retain.StorageError, match="No space left on device") as info:
            item.save_file("big.npy", np.zeros(100_000))
        assert info.value.errno == errno.ENOSPC and "big.npy" in str(info.value)
        assert not list((root / "s").rglob(".retain-tmp-*"))


def test_read_only_storage_says_why_and_keeps_what_is_stored(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", "1m") as root, retain.storage(root / "s"):
        kept = get(Item, {"k": 1}).commit()
        subprocess.run(["mount", "-o", "remount,ro", str(root)], check=True)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with pytest.raises(retain.StorageError, match="Read-only file system"):
                    get(Item, {"k": 2}).commit()
            # The error says what was wrong; no warning that the index may miss a commit made.
            assert [w.message for w in caught if issubclass(w.category, retain.IndexWarning)] == []
            with pytest.raises(retain.StorageError, match="Read-only file system"):
                kept.save_file("x.json", 1)
            assert get(Item, {"k": 1}) == kept and get(Item, {"k": 1}).is_committed()
            assert not get(Item, {"k": 2}).is_committed()
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(root)], check=True)


def test_an_unwritable_journal_is_reported_once_the_change_it_announces_is_made(tmp_path: Path) -> None:
    from retain.index import _updates
    from retain.storage.layout import JOURNAL_COMMIT

    with retain.storage(tmp_path / "s") as store:
        get(Item, {"k": 1}).commit()
        journal = tmp_path / "s" / ".retain" / "journal"
        journal.unlink()
        journal.mkdir()  # appending to it fails (EISDIR), even as root
        with pytest.warns(retain.IndexWarning, match="could not append to the index journal"):
            made = get(Item, {"k": 2}).commit()
        assert made.is_committed() and get(Item, {"k": 2}) == made
        # A change that fails raises its own error, and nothing is said of the journal.
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ZeroDivisionError):
                with _updates.journaled(store, made.id, JOURNAL_COMMIT):
                    1 / 0


# -- fuzzed bad input -----------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(text=st.text(max_size=30).map(lambda s: "~" + s) | st.text(max_size=30))
def test_malformed_versions_get_clear_errors(text: str) -> None:
    try:
        get(Item, text).id
    except RetainError as exc:
        assert str(exc)
    except Exception as exc:  # anything else is a crash, whatever its type
        raise AssertionError(f"{text!r} raised {type(exc).__name__}: {exc}") from exc


@FUZZ
@given(update=st.dictionaries(st.text(max_size=8), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6), max_size=4))
def test_fuzzed_configs_get_clear_errors(update: dict[str, Any]) -> None:
    try:
        get(Item, update).id
    except RetainError as exc:
        assert str(exc)


RECORD_DAMAGE = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda i: st.lists(i) | st.dictionaries(st.text(max_size=5), i), max_leaves=8).map(lambda v: json.dumps(v).encode()),
)


@FUZZ
@given(damage=RECORD_DAMAGE, cut=st.integers(0, 400))
def test_damaged_records_get_clear_errors(damage: bytes, cut: int, tmp_path_factory: Any) -> None:
    with retain.storage(tmp_path_factory.mktemp("s")):
        item = get(Item, {"k": 5}).commit()
        path = Path(item.local_directory(), "interface.json")
        original = path.read_bytes()
        for content in (damage, original[:cut], original[:cut] + damage):
            if content == original:
                continue
            path.write_bytes(content)
            for attempt in (lambda: Interface.from_directory(item.local_directory()), lambda: get(Item, {"k": 5})):
                with pytest.raises(retain.RecordError):
                    attempt()
            with pytest.warns(retain.IndexWarning, match="damaged record"):
                retain.index.rebuild()  # a damaged record is reported, never a crash
            assert all(i.id != item.id for i in get.all(Item))


@FUZZ
@given(name=st.text(max_size=40) | st.sampled_from(["..", "../x.txt", "/x.txt", "a/../../x.txt", "\x00.txt", "x" * 300 + ".txt", "interface.json", "summary.json"]))
def test_hostile_file_names_never_escape(name: str, tmp_path_factory: Any) -> None:
    base = tmp_path_factory.mktemp("h")
    with retain.storage(base / "s"):
        item = get(Item)
        try:
            path = item.save_file(name, "x")
        except (retain.UnsafePathError, retain.CodecError) as exc:
            assert str(exc)
        else:
            directory = os.path.realpath(item.local_directory())
            assert os.path.realpath(path).startswith(directory + os.sep)
            assert item.load_file(name) == "x"
    outside = [p for p in base.rglob("*") if not str(p).startswith(str(base / "s"))]
    assert outside == []


@FUZZ
@given(words=st.lists(st.text(max_size=12) | st.sampled_from(["--json", "--commit", "~", "ls", "show", "find", "x=1", "--storage"]), max_size=5))
def test_fuzzed_command_lines_exit_with_a_code(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    if "--debug" in words:
        return
    code = cli_main(["--storage", os.environ.get("TMPDIR", "/tmp") + "/retain-fuzz-cli", *words])
    capsys.readouterr()
    assert isinstance(code, int) and code in (0, 1, 2)


INDEX_DAMAGE = st.one_of(
    st.binary(max_size=300),
    st.integers(0, 8192).map(lambda n: ("truncate", n)),
    st.sampled_from([b"SQLite format 3\x00" + b"\x00" * 84, b'{"foreign": "json"}', b""]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=INDEX_DAMAGE)
def test_damaged_index_files_get_clear_errors_and_rebuild(damage: Any, tmp_path_factory: Any) -> None:
    from retain.index import make_index

    root = tmp_path_factory.mktemp("i")
    with retain.storage(root) as store:
        ids = {get(Item, {"k": k}).commit().id for k in range(5)}
        assert {i.id for i in get.all(Item)} == ids
        retain.index._updates.flush()
        index = make_index(None, store)
        path = Path(index.path)  # type: ignore[attr-defined]
        index.close()  # type: ignore[attr-defined]
        original = path.read_bytes()
        if isinstance(damage, tuple):
            path.write_bytes(original[: damage[1]])
        else:
            path.write_bytes(damage)
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        try:
            found = {i.id for i in get.all(Item)}
        except retain.IndexDatabaseError as exc:
            assert "rebuild" in str(exc)
        else:
            assert found == ids  # an empty or truncated file is simply made anew
        assert retain.index.rebuild() == 5
        assert {i.id for i in get.all(Item)} == ids


class Alpha(Interface):
    Config = {"k": 0, "name": "", "tags": []}


class Beta(Interface):
    Config = {"k": 0, "rate": 0.5}


def _damage(data: bytearray, rng: Any) -> bytearray:
    """`data` (an SQLite file) damaged one of several ways, as chosen by `rng`."""
    page = 4096
    how = rng.randrange(5)
    if how <= 1:  # random bytes at random offsets (what a failing disk or a stray write does)
        for _ in range(rng.randint(1, 8)):
            offset = rng.randrange(len(data))
            data[offset:offset + rng.randint(1, 64)] = rng.randbytes(rng.randint(1, 64))[: len(data) - offset]
        return data
    pages = len(data) // page
    n = rng.randrange(pages)
    if how == 2:  # one page zeroed (a lost write)
        data[n * page:(n + 1) * page] = bytes(page)
    elif how == 3:  # two pages swapped (writes reordered)
        m = rng.randrange(pages)
        a, b = bytes(data[n * page:(n + 1) * page]), bytes(data[m * page:(m + 1) * page])
        data[n * page:(n + 1) * page], data[m * page:(m + 1) * page] = b, a
    else:  # one byte flipped anywhere, the header included
        offset = rng.randrange(len(data)) if rng.random() < 0.8 else rng.randrange(100)
        data[offset] ^= 1 << rng.randrange(8)
    return data


def test_a_damaged_index_never_answers_wrong_and_rebuild_repairs_it(tmp_path: Path) -> None:
    """Seeded damage to the index file (bytes, pages, bits): every query raises an
    `IndexDatabaseError` that says to rebuild, or returns exactly the committed interfaces;
    `rebuild()` always ends with an index equal to the records."""
    import random

    from conftest import close_default_indexes

    template = tmp_path / "template"
    with retain.storage(template):
        alphas = {k: get(Alpha, {"k": k, "name": f"alpha-{k}" * 5, "tags": [k, "t"]}).commit().id for k in range(60)}
        betas = {k: get(Beta, {"k": k, "rate": k / 7}).commit().id for k in range(40)}
        assert len(get.all(Alpha)) == 60
    close_default_indexes()
    everything = set(alphas.values()) | set(betas.values())
    queries = [
        (lambda: get.all(Alpha), set(alphas.values())),
        (lambda: get.all(Beta), set(betas.values())),
        (lambda: get.all(Alpha, where={"k": 3}), {alphas[3]}),
        (lambda: get.all(Beta, where={"rate": retain.gt(3)}), {betas[k] for k in betas if k / 7 > 3}),
        (lambda: get.all(Alpha, where={"tags": [7, "t"]}), {alphas[7]}),
        (lambda: get.all(Interface), everything),
    ]
    outcomes = {"error": 0, "right": 0}
    for seed in range(60):
        root = tmp_path / f"s{seed}"
        shutil.copytree(template, root)
        path = root / ".retain" / "index.sqlite"
        path.write_bytes(bytes(_damage(bytearray(path.read_bytes()), random.Random(seed))))
        with retain.storage(root) as store, warnings.catch_warnings():
            warnings.simplefilter("ignore", retain.IndexWarning)
            for query, expected in queries:
                try:
                    found = {i.id for i in query()}
                except retain.IndexDatabaseError as exc:
                    assert "rebuild" in str(exc), (seed, str(exc))
                    outcomes["error"] += 1
                else:
                    assert found == expected, seed
                    outcomes["right"] += 1
            assert retain.index.rebuild() == 100, seed
            for query, expected in queries:
                assert {i.id for i in query()} == expected, seed
            assert retain.index.make_index(None, store).integrity_check() == "ok"  # type: ignore[attr-defined]
        close_default_indexes()
        shutil.rmtree(root)
    assert outcomes["error"] and outcomes["right"]  # both outcomes were met
