"""The PostgreSQL index against a real server: the conformance suite, many processes writing at
once, migrations, faults (unreachable server, bad password, a server that never answers, a lost
connection), selection by URL, settings and environment.

The server comes from ``scripts/services/postgres.sh`` (which `scripts/test` runs); its URL is
``RETAIN_TEST_POSTGRES_URL``. Without a server these tests fail, and say how to start one.
Each test gets a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WORKERS_DIR

import retain
from retain import IndexDatabaseError, Interface, Storage, get, lt
from retain.index import make_index
from retain.modules import class_reference
from retain.query import Query, equal
from retain.testing.index import CLASS, IndexConformance, cond, entry

#: What scripts/services/postgres.sh sets up (and prints) when the variable is not set.
DEFAULT_URL = "postgresql://retain:retain@127.0.0.1:54329/retain_test"
URL = os.environ.get("RETAIN_TEST_POSTGRES_URL") or DEFAULT_URL
HOW = (
    "run scripts/services/postgres.sh (as root: it installs and starts PostgreSQL on 127.0.0.1) "
    "and export the RETAIN_TEST_POSTGRES_URL it prints; scripts/test does both"
)


@pytest.fixture(scope="session")
def server() -> Iterator[Any]:
    """An admin connection to the test server; fails (never skips) when there is none."""
    try:
        import psycopg
    except ImportError:
        pytest.fail("psycopg is not installed: pip install -e '.[test]'", pytrace=False)
    try:
        conn = psycopg.connect(URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        from retain.index.postgres import hide_password

        pytest.fail(f"no PostgreSQL server for the tests at {hide_password(URL)} ({exc}); {HOW}", pytrace=False)
    yield conn
    conn.close()


@pytest.fixture
def schema(server: Any) -> Iterator[str]:
    """A fresh schema name; the schema (if the test made it) is dropped afterwards, and the
    indexes made for it are closed."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    for key, index in list(retain.index._resolve._by_url.items()):
        if name in key:
            index.close()
            del retain.index._resolve._by_url[key]
    server.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def url_for(schema: str) -> str:
    return f"{URL}{'&' if '?' in URL else '?'}schema={schema}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_") or k.startswith("RETAIN_TEST_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (WORKERS_DIR, env.get("PYTHONPATH")) if p)
    return env


class TestPostgresIndexConformance(IndexConformance):
    @pytest.fixture
    def index(self, schema: str) -> Iterator[retain.index.PostgresIndex]:
        index = retain.index.PostgresIndex(URL, schema=schema)
        yield index
        index.close()


class Train(Interface):
    Config = {"lr": 0.1, "batch_size": 32, "flag": False, "model": {"depth": 2}}


# -- selection --------------------------------------------------------------------------------


def test_selected_by_url_setting_and_environment(schema: str, store: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    url = url_for(schema)
    index = make_index(url)
    assert isinstance(index, retain.index.PostgresIndex) and make_index(url) is index
    assert index.supports_multiple_hosts and index.schema == schema
    assert "retain:***@" in repr(index) and ":retain@" not in repr(index)
    with retain.settings(index=url):
        assert make_index() is index
        runs = [Train({"lr": lr, "batch_size": b, "flag": f}).commit()
                for lr, b, f in [(0.1, 1, True), (0.01, 1, False), (0.001, 2, False)]]
        runs[1].save_summary(loss=0.5)
        retain.index._updates.flush()
        # Commits went to PostgreSQL, not to the storage's SQLite index.
        assert index.ids() == {r.id for r in runs}
        assert not Path(store.url, ".retain", "index.sqlite").exists()
        assert set(get.all(Train, where={"batch_size": 1.0}).ids()) == {runs[0].id, runs[1].id}
        assert get.all(Train, where={"batch_size": True}).ids() == []  # True != 1
        assert get.all(Train, where={"flag": True}).ids() == [runs[0].id]
        assert get.all(Train, where={"model.depth": 2, "lr": lt(0.05)}).ids() == [runs[2].id, runs[1].id]
        assert get.all(Train).filter({"summary.loss": 0.5}).ids() == [runs[1].id]
    assert make_index() is not index  # outside the block: the storage's own
    monkeypatch.setenv("RETAIN_INDEX", url)
    assert make_index() is index
    assert len(get.all(Train)) == 3
    assert retain.index.rebuild() == 3
    assert index.ids() == {r.id for r in runs}


def test_one_schema_serves_one_storage_wherever_it_is_mounted(schema: str, tmp_path: Path) -> None:
    """A second storage on the same schema is refused with a clear error (the two would keep
    replacing each other's rows); the same storage at another path (another host's mount
    point) is the same storage; a rebuild hands the schema to another storage."""
    from retain import IndexDatabaseError

    url = url_for(schema)
    first, other = tmp_path / "first", tmp_path / "other"
    with retain.storage(first), retain.settings(index=url):
        mine = Train({"lr": 0.5}).commit()
        assert get.all(Train).ids() == [mine.id]
    (tmp_path / "mounted").symlink_to(first)  # the same directory, seen at another path
    with retain.storage(tmp_path / "mounted"), retain.settings(index=url):
        assert get.all(Train).ids() == [mine.id]
    with retain.storage(other), retain.settings(index=url):
        theirs = Train({"lr": 0.7}).commit()  # a commit still succeeds: the index is a cache
        with pytest.raises(IndexDatabaseError, match="serves another storage") as raised:
            get.all(Train)
        assert str(tmp_path / "mounted") in str(raised.value) and "schema=" in str(raised.value)  # last seen there
        assert retain.index.rebuild() == 1
        assert get.all(Train).ids() == [theirs.id]
    with retain.storage(first), retain.settings(index=url):
        with pytest.raises(IndexDatabaseError, match="serves another storage"):
            get.all(Train)
    assert mine.is_committed() and Path(mine.local_directory(), "interface.json").exists()  # nothing lost


def test_missing_driver_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import retain\n"
        "try:\n"
        "    retain.index.make_index('postgresql://u@127.0.0.1/db')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'retain[postgres]'" in out.stdout


def test_bad_urls_and_schema_names() -> None:
    with pytest.raises(IndexDatabaseError, match=r"index must be an Index.*'mysql://u:\*\*\*@h/d'"):
        make_index("mysql://u:secret@h/d")
    with pytest.raises(IndexDatabaseError, match="not a plain identifier"):
        retain.index.PostgresIndex(URL, schema="bad-name")


# -- faults -----------------------------------------------------------------------------------


def test_unreachable_server_is_a_quick_clear_error() -> None:
    port = closed_port()
    url = f"postgresql://someone:s3cret@127.0.0.1:{port}/nothing"
    index = retain.index.PostgresIndex(url)
    started = time.monotonic()
    with pytest.raises(IndexDatabaseError) as caught:
        index.ids()
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert f"postgresql://someone:***@127.0.0.1:{port}/nothing" in message
    assert "s3cret" not in message and "cannot connect" in message
    assert "s3cret" not in repr(index)


def test_bad_password_names_the_user_not_the_password(server: Any) -> None:
    import psycopg

    params = psycopg.conninfo.conninfo_to_dict(URL)
    url = f"postgresql://{params['user']}:wrong-pass@{params['host']}:{params['port']}/{params['dbname']}"
    with pytest.raises(IndexDatabaseError, match="authentication failed") as caught:
        retain.index.PostgresIndex(url).ids()
    assert "wrong-pass" not in str(caught.value) and f"{params['user']}:***@" in str(caught.value)


def test_a_server_that_never_answers_times_out() -> None:
    """A listener that accepts connections and says nothing: the connect timeout ends the wait."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        index = retain.index.PostgresIndex(f"postgresql://u:p@127.0.0.1:{port}/db", connect_timeout=2)
        started = time.monotonic()
        with pytest.raises(IndexDatabaseError, match=r"cannot connect .*127\.0\.0\.1"):
            index.get_meta()
        assert 1.5 < time.monotonic() - started < 8


def test_a_lost_connection_is_reopened(schema: str, server: Any) -> None:
    index = retain.index.PostgresIndex(URL, schema=schema)
    index.upsert([entry(1, {"x": 1})])
    pid = index._db.connection().info.backend_pid
    server.execute("SELECT pg_terminate_backend(%s)", (pid,))
    index.upsert([entry(2, {"x": 2})])  # reconnects once, then writes
    assert index.ids() == {f"{1:032x}", f"{2:032x}"}
    assert index._db.connection().info.backend_pid != pid
    index.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_leaves_the_parents_connection_alone(schema: str) -> None:
    index = retain.index.PostgresIndex(URL, schema=schema)
    index.upsert([entry(1, {"x": 1})])
    conn = index._db.connection()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            import gc

            index.upsert([entry(2, {"x": 2})])
            code = 0 if len(index.ids()) == 2 else 2
            gc.collect()  # the inherited connection is finalized here: it must not close the parent's
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert index._db.connection() is conn and not conn.closed
    assert index.ids() == {f"{1:032x}", f"{2:032x}"}
    index.close()


# -- schema -----------------------------------------------------------------------------------


def test_migrations_are_recorded_and_a_newer_schema_is_refused(schema: str, server: Any) -> None:
    index = retain.index.PostgresIndex(URL, schema=schema)
    index.upsert([entry(1, {"x": 1})])
    [(version, applied, by), (second, _, _), (third, _, _), (fourth, _, _)] = index.migrations()
    assert (version, second, third, fourth) == (1, 2, 3, 4) and by == retain.__version__ and applied.startswith("20")
    index.close()
    server.execute(f'INSERT INTO "{schema}".migrations (version, retain) VALUES (99, %s)', ("9.9",))
    newer = retain.index.PostgresIndex(URL, schema=schema)
    with pytest.raises(IndexDatabaseError, match="schema version 99, newer.*Upgrade retain"):
        newer.ids()
    newer.reset()  # what rebuild does: the tables are made anew, with this version
    assert newer.ids() == set() and [m[0] for m in newer.migrations()] == [1, 2, 3, 4]
    newer.close()


def test_a_schema_1_is_migrated_in_place_and_takes_metrics(schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from retain.index.postgres import _connection as _postgres_connection, _schema as _postgres_schema

    assert _postgres_connection.SCHEMA_VERSION == 4  # imported before the patch, which it must not see
    with monkeypatch.context() as patch:
        patch.setattr(_postgres_schema, "SCHEMA_VERSION", 1)
        patch.setattr(_postgres_schema, "_MIGRATIONS", _postgres_schema._MIGRATIONS[:1])
        old = retain.index.PostgresIndex(URL, schema=schema)
        assert old.ids() == set()  # the tables of schema 1, made by an earlier release
        old.close()
    index = retain.index.PostgresIndex(URL, schema=schema)
    update = entry(1, {"x": 1})
    update.metrics = {"loss": 0.25}
    index.upsert([entry(1, {"x": 1}, summary={"loss": 0.5}), update])
    [row] = index.select(Query([CLASS]))
    assert "0.5" in (row[6] or "") and "0.25" in (row[7] or "")
    assert [m[0] for m in index.migrations()] == [1, 2, 3, 4]
    index.close()


# -- processes --------------------------------------------------------------------------------


def test_processes_commit_at_once_and_no_row_is_lost(schema: str, store: Storage) -> None:
    """Four processes migrate a fresh schema, commit their own jobs and the same shared ones at
    once; every commit is in the index without any repair, each exactly once."""
    url = url_for(schema)
    workers, own, shared = 4, 20, 10
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "postgres_worker", "commit", url, store.url, str(w), str(own), str(shared)],
            cwd=WORKERS_DIR, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for w in range(workers)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert int(out) >= own + shared
    import postgres_worker

    Job = postgres_worker.Job
    expected = {Job({"i": i, "worker": w}).id for w in range(workers) for i in range(own)}
    expected |= {Job({"i": i, "shared": True}).id for i in range(shared)}
    index = make_index(url)
    assert index.ids() == expected  # no sync: every process indexed its own commits
    klass = [class_reference(Job)]
    assert index.count(Query(klass)) == len(expected)
    for i in range(shared):  # one row per shared job, one config value per leaf
        query = Query(klass, conditions=[cond("shared", equal(True, "s")), cond("i", equal(i, "i"))])
        assert index.count(query) == 1
    with retain.settings(index=url):
        found = get.all(Job, where={"worker": 3})
        assert len(found) == own and found.filter({"summary.loss": lt(0.45)}).pluck("i") == [4, 3, 2, 1, 0]


def test_processes_upsert_the_same_ids_at_once(schema: str) -> None:
    url = url_for(schema)
    make_index(url).ids()  # tables made
    count = 60
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "postgres_worker", "upsert", url, str(w), str(count)],
            cwd=WORKERS_DIR, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        for w in range(3)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    index = make_index(url)
    assert index.ids() == {f"{n:032x}" for n in range(count)}
    query = Query([("pkg.mod", "Cls")], conditions=[cond("tag", equal("x", "tag"))])
    assert index.count(query) == count  # no duplicate config values
    nested = Query([("pkg.mod", "Cls")], conditions=[cond("nested.v", equal([7, "a"], "v"))])
    assert [row[0] for row in index.select(nested)] == [f"{7:032x}"]
    assert all(row[6] is not None and '"by"' in row[6] for row in index.select(query))


def test_queries_during_a_rebuild_see_the_old_rows_or_the_new(schema: str, store: Storage) -> None:
    """Another process rebuilds the index again and again (each rebuild replaces every row, so
    rows get new numbers) while this one queries by config: each query reads in one snapshot
    (the matching row numbers and the rows), so it finds the old rows or the new, never none."""
    import postgres_worker

    Job = postgres_worker.Job
    url = url_for(schema)
    with retain.settings(index=url):
        for i in range(30):
            Job({"i": i, "worker": i % 3}).commit()
        retain.index._updates.flush()
        assert len(get.all(Job, where={"worker": 1})) == 10
        proc = subprocess.Popen(
            [sys.executable, "-m", "postgres_worker", "rebuild", url, store.url, "6"],
            cwd=WORKERS_DIR, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            queries, empty = 0, 0
            while proc.poll() is None:
                found = len(get.all(Job, where={"worker": 1}))
                queries += 1
                if found == 0:
                    empty += 1
                else:
                    assert found == 10
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert int(out) > 10 and queries > 100, (int(out), queries)  # they did overlap
    assert empty == 0, f"{empty} of {queries} queries found nothing"


def test_text_is_compared_as_python_does(schema: str) -> None:
    """Code point order whatever the server's locale; NUL characters are stored."""
    index = retain.index.PostgresIndex(URL, schema=schema)
    words = ["a", "B", "b", "Z", "é", "e", "a\x00b", "\U0001f600", "\uffff", ""]
    index.upsert([entry(n, {"w": w, "k\x00ey": n}) for n, w in enumerate(words)])
    for bound in ("b", "a", "\uffff", "Z", "e"):
        found = index.select(Query([CLASS], conditions=[cond("w", lt(bound))]))
        assert sorted(row[0] for row in found) == sorted(f"{n:032x}" for n, w in enumerate(words) if w < bound)
    found = index.select(Query([CLASS], conditions=[cond("k\x00ey", equal(6, "k"))]))
    assert [row[0] for row in found] == [f"{6:032x}"]
    index.close()


def test_numbers_compare_as_python_does(schema: str) -> None:
    """Exact for big integers and integral floats; neighbouring floats stay apart and ordered."""
    import math

    from retain.query import Field, field_value, ge

    values = [2**60, float(2**60), 2**60 + 1, 2**53 + 1, float(2**53), 0.1, math.nextafter(0.1, 1),
              1e-300, -1e-300, 1.5, 3, -0.0, 10**30, 1e30]
    index = retain.index.PostgresIndex(URL, schema=schema)
    index.upsert([entry(n, {"v": v}) for n, v in enumerate(values)])
    for bound in values:
        for filter in (equal(bound, "v"), lt(bound), ge(bound)):
            expected = {f"{n:032x}" for n, v in enumerate(values)
                        if filter.matches(field_value(Field("config", "v", "v"), {"v": v}, None, {}))}
            found = index.select(Query([CLASS], conditions=[cond("v", filter)]))
            assert {row[0] for row in found} == expected, (bound, filter)
    index.close()


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2, reason="fork, two CPUs")
def test_to_table_in_worker_processes_reads_postgresql_alike(store: Storage, schema: str) -> None:
    """Forked table workers each open their own connection (never the parent's)."""
    from test_index import check_table_in_workers

    url = url_for(schema)
    with retain.settings(index=url):
        check_table_in_workers(store, {"RETAIN_INDEX": url}, "PostgresIndex")
