"""Performance figures of the PostgreSQL index (issue 5), against targets and the SQLite index
measured in the same run on the same storage.

Usage (from the repository root; needs a server: `scripts/services/postgres.sh` starts one):

    .venv/bin/python benchmarks/bench_postgres.py            # 100,000 interfaces; updates the
                                                             # "PostgreSQL index" section of
                                                             # RESULTS.md
    .venv/bin/python benchmarks/bench_postgres.py --n 10000  # smaller; RESULTS.md untouched
                                                             # unless --write-results

The server is `RETAIN_BENCH_POSTGRES_URL`, else `RETAIN_TEST_POSTGRES_URL`, else the one the
script sets up; the figures use a schema of their own, dropped at the end.

Prints one JSON line per figure on stdout (name, values, baseline, ratio, target, pass), like
`benchmarks/run.py`; progress goes to stderr. The exit status is 0 even when figures miss.

Method: the storage is populated as in `bench_index.py` (commits that skip the index, six
config leaves and two summary values each), then `rebuild(index=...)` fills both indexes.
Query times are medians of repeated `get.all` calls (sync check + query, the whole public
path), the two indexes alternating.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import statistics
import sys
import time
import uuid
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import Figures, loadavg, r, results_parser, scratch  # noqa: E402
# bench_index puts the working tree's src on sys.path; its log: "[bench-index ...]", as before
from bench_index import BenchRun, config_of, log, populate, timed  # noqa: E402

import retain  # noqa: E402
from retain import get, storage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## PostgreSQL index"
DEFAULT_URL = "postgresql://retain:retain@127.0.0.1:54329/retain_test"

FIGURES = Figures()


def alternating(fns: dict[str, Any], reps: int) -> dict[str, list[float]]:
    """Each function `reps` times, alternating; the samples in ms (the first call of each,
    a warm-up, dropped)."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for rep in range(reps + 1):
        names = list(fns) if rep % 2 == 0 else list(reversed(fns))
        for name in names:
            ms, _ = timed(fns[name])
            if rep:
                samples[name].append(ms)
    return samples


def bench_rebuild(root: str, n: int, pg_url: str, sqlite_url: str) -> None:
    ms_pg, count = timed(lambda: retain.index.rebuild(root, index=pg_url))
    assert count == n, count
    ms_sqlite, count = timed(lambda: retain.index.rebuild(root, index=sqlite_url))
    assert count == n, count
    FIGURES.add(
        "postgres_rebuild",
        {"ms": r(ms_pg), "interfaces": n},
        {"ops": "rebuild() into the SQLite index", "ms": r(ms_sqlite)},
        ms_pg / ms_sqlite, "informational", True,
        f"{ms_pg / 1000:.2f} s", f"{ms_sqlite / 1000:.2f} s (SQLite)",
    )


def bench_queries(root: str, n: int, pg_url: str, sqlite_url: str, reps: int) -> None:
    with storage(root):
        def where(url: str, condition: dict[str, Any]) -> Any:
            return lambda: get.all(BenchRun, where=condition, index=url)

        one_pct = {"group": 7}
        unique = {"i": n // 2}
        ranged = {"lr": retain.lt(0.0005), "batch_size": 64}
        # The storage root changed just now (populate): let its time settle, as bench_index's
        # queries do, so that the figures measure the query, not the scan of 100,000 names.
        time.sleep(2.1)
        get.all(BenchRun, where=unique, index=pg_url)
        get.all(BenchRun, where=unique, index=sqlite_url)
        assert len(get.all(BenchRun, where=one_pct, index=pg_url)) == n // 100
        assert len(get.all(BenchRun, where=unique, index=pg_url)) == 1
        ranged_pg = get.all(BenchRun, where=ranged, index=pg_url)
        assert ranged_pg.ids() == get.all(BenchRun, where=ranged, index=sqlite_url).ids()
        eq = alternating({"pg": where(pg_url, one_pct), "sqlite": where(sqlite_url, one_pct)}, reps)
        one = alternating({"pg": where(pg_url, unique), "sqlite": where(sqlite_url, unique)}, reps)
        rng = alternating({"pg": where(pg_url, ranged), "sqlite": where(sqlite_url, ranged)}, reps)
        index = retain.index.make_index(pg_url)
        from retain.modules import class_reference
        from retain.query import Query, compile_where

        conditions = compile_where(BenchRun, one_pct)[0]
        raw = alternating({"pg": lambda: index.select(Query([class_reference(BenchRun)], None, conditions))}, reps)
    med = {k: {name: statistics.median(v) for name, v in d.items()} for k, d in
           {"eq": eq, "one": one, "range": rng, "raw": raw}.items()}
    ratio = med["eq"]["pg"] / med["eq"]["sqlite"]
    FIGURES.add(
        "postgres_where_equality",
        {"median_ms_1pct": r(med["eq"]["pg"]), "max_ms_1pct": r(max(eq["pg"])), "matches_1pct": n // 100,
         "median_ms_unique": r(med["one"]["pg"]), "median_ms_range_and_equality": r(med["range"]["pg"]),
         "matches_range_and_equality": len(ranged_pg), "median_ms_select_only_1pct": r(med["raw"]["pg"]),
         "interfaces": n, "repetitions": reps},
        {"ops": "the same get.all with the SQLite index", "median_ms_1pct": r(med["eq"]["sqlite"]),
         "median_ms_unique": r(med["one"]["sqlite"]), "median_ms_range_and_equality": r(med["range"]["sqlite"])},
        ratio, "<= 50 ms for equality on one config key over 100,000",
        med["eq"]["pg"] <= 50 and med["one"]["pg"] <= 50,
        f"{med['eq']['pg']:.1f} ms ({n // 100:,} of {n:,} match); {med['one']['pg']:.1f} ms for a unique value; "
        f"{med['range']['pg']:.1f} ms range + equality",
        f"SQLite: {med['eq']['sqlite']:.1f} ms; {med['one']['sqlite']:.1f} ms; {med['range']['sqlite']:.1f} ms",
    )


def bench_commit(root: str, pg_url: str, reps: int) -> None:
    """`.commit()` with the PostgreSQL index (the background writer) vs the storage's SQLite
    index, alternating rounds; then the time to flush what is queued."""
    per_round = max(1, reps // 10)
    key = 30_000_000
    samples: dict[str, list[int]] = {"pg": [], "sqlite": []}
    clock = time.perf_counter_ns
    flushes: list[float] = []
    with storage(root):
        for round_ in range(11):  # round 0 warms up
            for arm in (("pg", "sqlite") if round_ % 2 else ("sqlite", "pg")):
                items = [BenchRun(config_of(key + j)) for j in range(per_round)]
                key += per_round
                got = []
                with retain.settings(index=pg_url) if arm == "pg" else contextlib.nullcontext():
                    for item in items:
                        t0 = clock()
                        item.commit()
                        got.append(clock() - t0)
                    ms, _ = timed(lambda: retain.index._updates.flush())
                if arm == "pg":
                    flushes.append(ms)
                if round_:
                    samples[arm] += got
    pg, lite = statistics.median(samples["pg"]) / 1000, statistics.median(samples["sqlite"]) / 1000
    FIGURES.add(
        "postgres_commit",
        {"median_us": r(pg), "mean_us": r(statistics.mean(samples["pg"]) / 1000),
         "median_flush_ms_after_round": r(statistics.median(flushes)), "per_round": per_round,
         "repetitions": len(samples["pg"])},
        {"ops": "commit with the storage's SQLite index", "median_us": r(lite)},
        pg / lite, "informational: a commit only queues the index update", True,
        f"{pg:.1f} us", f"{lite:.1f} us (SQLite index)",
    )


def write_section(n: int, seconds: float, populate_s: float, server: str) -> None:
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    intro = (
        f"Latest run of `benchmarks/bench_postgres.py` ({now}; {server} on 127.0.0.1, same "
        f"machine; {n:,} interfaces of one class, six config leaves and two summary values each; "
        f"populated in {populate_s:.0f} s; run took {seconds:.0f} s; load average at end {loadavg()})."
    )
    notes = [
        "- postgres_rebuild: `retain.index.rebuild(index=...)` into PostgreSQL vs into SQLite "
        "(read every record, replace the contents in one transaction).",
        "- postgres_where_equality: `get.all(BenchRun, where={'group': 7}, index=url)` (1% match; "
        "sync check + query + rows to a collection), a unique value, a range plus an equality; "
        "the SQLite index alternating; `select_only` is the index query alone.",
        "- postgres_commit: `.commit()` with `retain.settings(index=url)` vs the storage's SQLite "
        "index; the update is queued for a background writer, flushed after each round.",
    ]
    FIGURES.write_section(RESULTS, SECTION, intro, notes, log)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__, "update RESULTS.md even with --n")
    parser.add_argument("--n", type=int, default=100_000, help="interfaces to populate")
    args = parser.parse_args(argv)
    n = args.n
    full = n == 100_000
    base = os.environ.get("RETAIN_BENCH_POSTGRES_URL") or os.environ.get("RETAIN_TEST_POSTGRES_URL") or DEFAULT_URL
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    pg_url = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    start = time.perf_counter()
    with scratch("postgres-") as work:
        root = os.path.join(work, "storage")
        sqlite_url = f"sqlite:///{root}/.retain/index.sqlite"
        index = retain.index.make_index(pg_url)
        log(f"n={n:,} work={work} schema={schema} load={loadavg()}")
        server = "PostgreSQL"
        try:
            import psycopg

            with psycopg.connect(base, connect_timeout=5) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                server = f"PostgreSQL {row[0].split()[0]}" if row else server
            populate_s = populate(root, n)
            log(f"populated {n:,} in {populate_s:.1f} s")
            bench_rebuild(root, n, pg_url, sqlite_url)
            log("rebuild done")
            bench_queries(root, n, pg_url, sqlite_url, 30 if full else 10)
            log("queries done")
            bench_commit(root, pg_url, 2000 if full else 500)
            log("commit done")
        finally:
            index.close()
            try:
                import psycopg

                with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            except Exception as exc:  # pragma: no cover - reported, not fatal
                log(f"could not drop schema {schema}: {exc}")
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (full or args.write_results):
        write_section(n, seconds, populate_s, server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
