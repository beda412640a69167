"""Performance figures of `retain ui` (issue 11): pages of a results table of 100,000
committed interfaces, measured through HTTP on loopback against a real `retain ui` process.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_ui.py            # 100,000 interfaces; updates the
                                                       # "UI" section of RESULTS.md
    .venv/bin/python benchmarks/bench_ui.py --n 10000  # smaller; RESULTS.md untouched
                                                       # unless --write-results

Prints one JSON line per figure on stdout, like the other benchmarks; progress on stderr.

Method: the storage is populated as in bench_index.py (commits that skip the index, two
summary values each, then `retain.index.rebuild()`); the module of the class is written next to
it, and `retain ui --port 0` is started there. Each request is a GET on one kept-alive
connection (`http.client`), timed from sending to the last byte of the JSON; medians of
repeated requests. The first request of each kind after the server started (the query of all
100,000 rows) and the first after a commit (served from the rows already there while the
query runs again) are reported too.
"""

from __future__ import annotations

import datetime as _dt
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

from _common import Figures, config_of, loadavg, make_log, r, results_parser, scratch  # noqa: E402
import retain  # noqa: E402
from retain import get, storage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## UI"
MODULE = "bench_ui_model"
CLASS = f"{MODULE}:BenchRun"
SOURCE = '''
from retain import Interface


class BenchRun(Interface):
    """A sweep-like interface: six config leaves, two of them nested."""

    Config = {"i": 0, "lr": 0.1, "batch_size": 32, "group": 0, "model": {"depth": 2, "width": 64}}
'''

log = make_log("bench_ui")
FIGURES = Figures()


def populate(work: str, n: int) -> float:
    with open(os.path.join(work, f"{MODULE}.py"), "w") as handle:
        handle.write(SOURCE)
    sys.path.insert(0, work)
    import bench_ui_model

    root = os.path.join(work, "storage")
    t0 = time.perf_counter()
    with storage(root):
        with retain.index.updates("off"):
            for i in range(n):
                run = get(bench_ui_model.BenchRun, config_of(i)).commit()
                run.save_summary(loss=1.0 / (1 + i % 1000), accuracy=(i % 97) / 97)
                if i and i % 20_000 == 0:
                    log(f"  {i:,} committed")
        retain.index.rebuild()
    return time.perf_counter() - t0


class Client:
    """GETs on one kept-alive loopback connection, timed to the last byte."""

    def __init__(self, base: str) -> None:
        host, port = base.split("//")[1].strip("/").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=120)

    def get(self, path: str) -> tuple[float, Any]:
        t0 = time.perf_counter_ns()
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        body = response.read()
        elapsed = (time.perf_counter_ns() - t0) / 1e6
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:300]!r}")
        return elapsed, json.loads(body)


def start_server(work: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO, "src"), work])
    process = subprocess.Popen(
        [sys.executable, "-c", "from retain.cli import console; console()", "--storage",
         os.path.join(work, "storage"), "ui", "--port", "0"],
        cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "http://" not in line:
        raise RuntimeError(f"retain ui did not start: {line!r}")
    return process, line[line.index("http://"):].split()[0]


def median_of(client: Client, paths: list[str]) -> tuple[float, float, Any]:
    times = []
    last = None
    for path in paths:
        elapsed, last = client.get(path)
        times.append(elapsed)
    return statistics.median(times), max(times), last


def bench(work: str, n: int, reps: int) -> None:
    rows = f"/api/classes/{CLASS}/rows"
    # The first request after the start: the server may still be answering its warm-up query.
    process, base = start_server(work)
    try:
        client = Client(base)
        cold_ms, first = client.get(f"{rows}?limit=100")
        assert first["total"] == n and len(first["rows"]) == 100, first["total"]
        log(f"first request after start {cold_ms:.0f} ms")
        median_ms, max_ms, page = median_of(client, [f"{rows}?limit=100"] * reps)
        later_ms, _, _ = median_of(client, [f"{rows}?limit=100&offset={n // 2 + k}" for k in range(reps)])
        # After a commit: the storage changed, the rows of before are served while the query
        # runs again (or the new ones, when it is done within the wait).
        import bench_ui_model

        after = []
        currents = []
        for k in range(3):
            with storage(os.path.join(work, "storage")):
                get(bench_ui_model.BenchRun, config_of(n + k)).commit()
            elapsed, data = client.get(f"{rows}?limit=100")
            after.append(elapsed)
            currents.append(bool(data["current"]))
            time.sleep(2.5)  # the refresh finishes; the listing settles
        FIGURES.add(
            "ui_table_first_page",
            {"median_ms": r(median_ms), "max_ms": r(max_ms), "page_at_middle_median_ms": r(later_ms),
             "first_after_start_ms": r(cold_ms), "first_after_commit_ms": [r(a) for a in after],
             "after_commit_current": currents, "rows": n, "columns": len(page["columns"]), "repetitions": reps},
            None, None, "median <= 200 ms for page 1 (100 rows) of 100,000, through HTTP",
            median_ms <= 200,
            f"{median_ms:.1f} ms (max {max_ms:.0f}); a page in the middle {later_ms:.1f} ms; first after start "
            f"{cold_ms:.0f} ms; first after a commit {statistics.median(after):.0f} ms",
        )
        # Filters: each a new query (a value not asked before), so none is answered from memory.
        paths = [f"{rows}?limit=100&filter=group%3D{k}" for k in range(reps)]
        filtered_ms, filtered_max, data = median_of(client, paths)
        assert data["total"] == n // 100, data["total"]
        ranged = [f"{rows}?limit=100&filter=group%3D{k}+lr%3C0.01" for k in range(reps)]
        ranged_ms, _, _ = median_of(client, ranged)
        summary = [f"{rows}?limit=100&filter=summary.loss%3C{0.001 + k / 1e6}" for k in range(max(3, reps // 4))]
        summary_ms, _, summary_data = median_of(client, summary)
        FIGURES.add(
            "ui_table_filtered_page",
            {"median_ms": r(filtered_ms), "max_ms": r(filtered_max), "matches": data["total"],
             "median_ms_equality_and_range": r(ranged_ms), "median_ms_summary_range": r(summary_ms),
             "summary_matches": summary_data["total"], "repetitions": reps},
            None, None, "median <= 100 ms for a page filtered with where (an equality matching 1%), new each time",
            filtered_ms <= 100,
            f"{filtered_ms:.1f} ms ({data['total']:,} match); with a range too {ranged_ms:.1f} ms; on a summary "
            f"value {summary_ms:.0f} ms",
        )
        sorted_first, _ = client.get(f"{rows}?limit=100&sort=-summary.loss")
        sorted_ms, _, _ = median_of(client, [f"{rows}?limit=100&sort=-summary.loss&offset={k * 100}" for k in range(reps)])
        overview_ms, _, _ = median_of(client, ["/api/classes"] * max(3, reps // 4))
        FIGURES.add(
            "ui_table_sorted_page",
            {"first_ms": r(sorted_first), "median_ms": r(sorted_ms), "overview_median_ms": r(overview_ms)},
            None, None, "informational: sorting 100,000 rows by a summary value, then pages of it; the overview",
            True,
            f"first {sorted_first:.0f} ms, then {sorted_ms:.1f} ms a page; overview {overview_ms:.0f} ms",
        )
    finally:
        process.terminate()
        process.wait(10)


def write_section(n: int, seconds: float, populate_s: float, load_start: str) -> None:
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    intro = (
        f"Latest run of `benchmarks/bench_ui.py` ({when}; {n:,} interfaces of one class, six config "
        f"leaves and two summary values each; populated in {populate_s:.0f} s; run took {seconds:.0f} s; "
        f"load average at start {load_start}, at end {loadavg()}; `retain ui` on 127.0.0.1, "
        "requests on one kept-alive connection)."
    )
    notes = [
        "- ui_table_first_page: `GET /api/classes/CLASS/rows?limit=100` (100 rows as JSON with every "
        "column, states and the column list); the page in the middle is `offset=n/2`. The first "
        "request after the start includes the query of the 100,000 rows (if the warm-up has not "
        "answered it yet); after a commit the rows of before are served (`current: false`) while "
        "the query runs again in the background, unless it finishes within 50 ms.",
        "- ui_table_filtered_page: `filter=group=K` with a new K each time (never answered from "
        "memory): the index's equality query, then the page; also with a range on `lr`, and a range "
        "on a summary value (evaluated over the rows in Python).",
        "- ui_table_sorted_page: `sort=-summary.loss`: the first request sorts the 100,000 rows, the "
        "next pages come from memory; the overview counts every class by state.",
    ]
    FIGURES.write_section(RESULTS, SECTION, intro, notes, log)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__, "update RESULTS.md even with --n")
    parser.add_argument("--n", type=int, default=100_000, help="interfaces to populate")
    parser.add_argument("--reps", type=int, default=20, help="requests per median")
    parser.add_argument("--keep", action="store_true", help="keep the temporary storage")
    args = parser.parse_args(argv)
    n = args.n
    full = n == 100_000
    start = time.perf_counter()
    with scratch("ui-", keep=args.keep, log=log) as work:
        load_start = loadavg()
        log(f"n={n:,} work={work} load={load_start}")
        populate_s = populate(work, n)
        log(f"populated {n:,} in {populate_s:.1f} s")
        bench(work, n, args.reps)
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (full or args.write_results):
        write_section(n, seconds, populate_s, load_start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
