"""Storage layout at scale (issue 15): the sharded layout (`<root>/<id[:2]>/<id>/`, the default of
a new local storage since these figures) against the plain one (`<root>/<id>/`, what storages
written before keep) on the file system of a directory, with a million results.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_layout.py                  # 1,000,000 results under
                                                                 # .bench-tmp/ (this disk); updates
                                                                 # the "Layout" section of RESULTS.md
    .venv/bin/python benchmarks/bench_layout.py --quick          # 5,000 results; RESULTS.md
                                                                 # untouched unless --write-results
    .venv/bin/python benchmarks/bench_layout.py --dir /mnt/xfs --label xfs   # another file system
    .venv/bin/python benchmarks/bench_layout.py --keep DIR       # keep (and reuse) the populations

Prints one JSON line per figure on stdout; progress goes to stderr. The exit status is 0 even
when figures miss. Several runs (one per file system, `--label`) each add their own rows: the
section keeps the rows of other labels.

Population: records written in bulk, without commits: the record of cell `i` is the record a
commit of `BenchCell({"i": i, ...})` writes (template from one real commit, id from
`retain.identity.compute_id`, bytes from `retain.storage.layout.encode_record`), written into
`storage.local_directory(id)`, then `retain.index.rebuild()`. A population is reused by later
runs given the same `--keep` directory.

Figures per layout: `get` hit (median over random committed cells), commit (median, index on),
listing every directory (`iter_directories`), first query after a commit (the index's
`sync` then one equality query), a settled query, rebuild, and the population time.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import random
import statistics
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

from _common import Figures, loadavg, make_log, r, results_parser, scratch  # noqa: E402
import retain  # noqa: E402
from retain import Interface, get, storage  # noqa: E402
from retain.identity import compute_id  # noqa: E402
from retain.index._updates import flush  # noqa: E402
from retain.storage.layout import RECORD_FILE, decode_record, encode_record  # noqa: E402
from retain.storage.local import LocalStorage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## Layout"
FULL = 1_000_000
QUICK = 5_000
SHARD = 2
LAYOUTS = {"plain": 0, "sharded": SHARD}


class BenchCell(Interface):
    """One cell of a sweep: three config leaves (no value equals its default, so the canonical
    config is the config)."""

    Config = {"i": -1, "group": -1, "seed": -1}


FIGURES = Figures()
log = make_log("bench-layout")


def cell(i: int) -> dict[str, int]:
    return {"i": i, "group": i % 100, "seed": i % 7}


def timed_us(fn: Any) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1000


# -- population ---------------------------------------------------------------------------------


def populate(root: str, shard: int, n: int) -> float:
    """Write `n` records in `root` (reused when already there); the seconds it took, or 0."""
    done = os.path.join(root, ".retain", f"bench-layout-{n}")
    if os.path.exists(done):
        log(f"  reusing the population in {root}")
        return 0.0
    t0 = time.perf_counter()
    store = LocalStorage(root, shard=shard)
    with storage(store), retain.index.updates("off"):
        first = BenchCell(cell(0)).commit()  # cell 0, the baselines and the record's shape
    base = decode_record(store.read_record(first.id) or b"", "template")
    module, qualname = base["module"], base["class"]
    # The record's bytes with holes for what differs between cells (checked against
    # encode_record on the first cells): a fraction of encode_record's time.
    holes = dict(base, id="@ID@", config="@C@", canonical_config="@C@", version="@V@", created="@T@")
    template = encode_record(holes).decode()
    made: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for i in range(1, n):
        config = cell(i)
        id = compute_id(module, qualname, config)
        seconds, micro = divmod(i * 1000, 1_000_000)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        created = f"2026-01-01T{hours:02d}:{minutes:02d}:{seconds:02d}.{micro:06d}Z"
        text = json.dumps(config, sort_keys=True)
        data = (template.replace('"@ID@"', f'"{id}"').replace('"@C@"', text)
                .replace('"@V@"', f"[{text}]").replace('"@T@"', f'"{created}"')).encode()
        if i < 50:
            record = dict(base, id=id, config=config, canonical_config=config, version=[config], created=created)
            assert data == encode_record(record), (data, encode_record(record))
        directory = store.local_directory(id)
        if shard and id[:shard] not in made:
            os.makedirs(os.path.dirname(directory), exist_ok=True)
            made.add(id[:shard])
        os.mkdir(directory)
        fd = os.open(os.path.join(directory, RECORD_FILE), flags, 0o644)
        os.write(fd, data)
        os.close(fd)
        if i % 100_000 == 0:
            log(f"  {i:,} written ({time.perf_counter() - t0:.0f} s)")
    seconds_taken = time.perf_counter() - t0
    with open(done, "w") as handle:
        handle.write(f"{seconds_taken}\n")
    return seconds_taken


# -- figures ------------------------------------------------------------------------------------


def measure(roots: dict[str, str], n: int, reps: int, rebuild: bool = True) -> dict[str, dict[str, Any]]:
    """Every figure of every layout, the layouts alternating (chunks of repetitions, rounds)
    so that the load of a shared machine falls on both alike."""
    out: dict[str, dict[str, Any]] = {layout: {} for layout in roots}
    stores = {layout: LocalStorage(root, shard=LAYOUTS[layout]) for layout, root in roots.items()}
    order = list(roots)
    rounds = 2 if n < 100_000 else 1

    def alternate(k: int) -> list[str]:
        return order if k % 2 == 0 else order[::-1]

    # rebuild: list, read every record, replace the index (also what makes the index).
    rebuilds: dict[str, list[float]] = {layout: [] for layout in order}
    for k in range(rounds if rebuild else 0):
        for layout in alternate(k):
            gc.collect()
            t0 = time.perf_counter()
            count = retain.index.rebuild(roots[layout])
            rebuilds[layout].append(time.perf_counter() - t0)
            assert count >= n, (layout, count, n)  # a kept population has the commits of earlier runs
            log(f"  rebuilt {layout} in {rebuilds[layout][-1]:.1f} s")

    # listing every directory
    listings: dict[str, list[float]] = {layout: [] for layout in order}
    for k in range(6):
        for layout in alternate(k):
            t0 = time.perf_counter()
            listed = sum(1 for _ in stores[layout].iter_directories())
            listings[layout].append((time.perf_counter() - t0) * 1000)
            assert listed >= n, (layout, listed, n)

    rng = random.Random(15)
    keys = [rng.randrange(n) for _ in range(reps)]
    hits: dict[str, list[float]] = {layout: [] for layout in order}
    commits: dict[str, list[float]] = {layout: [] for layout in order}
    for layout in order:  # warm up
        with storage(stores[layout]):
            for k in keys[:200]:
                get(BenchCell, cell(k))
            assert get(BenchCell, cell(keys[0])).is_committed()
    chunk = 100
    for c, start in enumerate(range(0, reps, chunk)):
        for layout in alternate(c):
            with storage(stores[layout]):
                hits[layout] += [timed_us(lambda k=k: get(BenchCell, cell(k))) for k in keys[start:start + chunk]]
    base = 10**9 + time.time_ns() % 10**12  # new cells, even in a population kept from earlier runs
    for c, start in enumerate(range(0, reps // 4, chunk // 4)):
        for layout in alternate(c):
            with storage(stores[layout]):
                commits[layout] += [timed_us(lambda i=i: BenchCell(cell(base + i)).commit())
                                    for i in range(start, start + chunk // 4)]
                flush()
    log("  get and commit done")

    # first query after a commit; then settled. One match: the figure is the index's catching
    # up (journal, change check, listing), not the size of the answer.
    query = {"i": 5}
    after: dict[str, list[float]] = {layout: [] for layout in order}
    settled: dict[str, list[float]] = {layout: [] for layout in order}
    for layout in order:
        with storage(stores[layout]):
            get.all(BenchCell, where=query)
    for k in range(5 if n >= 100_000 else 3):
        for layout in alternate(k):
            with storage(stores[layout]):
                BenchCell(cell(base + 1_000_000 + k)).commit()
                after[layout].append(timed_us(lambda: len(get.all(BenchCell, where=query))) / 1000)
        time.sleep(2.1)  # past the settling time of a coarse clock
        for layout in alternate(k):
            with storage(stores[layout]):
                get.all(BenchCell, where=query)
                settled[layout].append(timed_us(lambda: len(get.all(BenchCell, where=query))) / 1000)
    for layout in order:
        with storage(stores[layout]):
            matches = len(get.all(BenchCell, where=query))
        out[layout] = {
            "rebuild_s": statistics.median(rebuilds[layout]) if rebuilds[layout] else None,
            "listing_ms": statistics.median(listings[layout]),
            "get_hit_us": statistics.median(hits[layout]),
            "commit_us": statistics.median(commits[layout]),
            "first_query_after_commit_ms": statistics.median(after[layout]),
            "settled_query_ms": statistics.median(settled[layout]),
            "matches": matches,
        }
    return out


def report(label: str, n: int, results: dict[str, dict[str, Any]], populate_s: dict[str, float]) -> None:
    plain, sharded = results["plain"], results["sharded"]
    for layout, values in results.items():
        if populate_s.get(layout):
            values["populate_s"] = populate_s[layout]
    first = sharded["first_query_after_commit_ms"]
    FIGURES.add(
        f"layout_first_query_after_commit_{label}",
        {"sharded_ms": r(first), "plain_ms": r(plain["first_query_after_commit_ms"]), "results": n},
        {"layout": "plain", "ms": r(plain["first_query_after_commit_ms"])},
        first / plain["first_query_after_commit_ms"], "sharded <= 20 ms at 1,000,000", first <= 20.0,
        f"{first:.1f} ms sharded", f"{plain['first_query_after_commit_ms']:.0f} ms plain (lists the root)",
    )
    for key, what, unit, target_ratio in (
        ("get_hit_us", "get_hit", "us", 1.15),
        ("commit_us", "commit", "us", 1.15),
        ("rebuild_s", "rebuild", "s", 1.15),
        ("listing_ms", "listing", "ms", 1.5),
        ("settled_query_ms", "settled_query", "ms", None),
    ):
        a, b = sharded[key], plain[key]
        if a is None or b is None:
            continue  # not measured in this run (--no-rebuild)
        ratio = a / b if b else None
        passed = target_ratio is None or (ratio is not None and ratio <= target_ratio)
        FIGURES.add(
            f"layout_{what}_{label}",
            {"sharded": r(a, 3), "plain": r(b, 3), "unit": unit, "results": n},
            {"layout": "plain", unit: r(b, 3)},
            ratio, f"sharded / plain <= {target_ratio}" if target_ratio else "informational",
            passed, f"{a:.3g} {unit} sharded", f"{b:.3g} {unit} plain",
        )
    for layout, values in results.items():
        log(f"{label} {layout}: " + json.dumps({k: r(v, 3) for k, v in values.items()}))


def write_section(label: str, n: int, seconds: float, load_at_start: str, where: str) -> None:
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    intro = (
        f"Latest run of `benchmarks/bench_layout.py` ({now}; {n:,} results per layout; `{label}`: "
        f"{where}; run took {seconds:.0f} s; load average at start {load_at_start}, at end "
        f"{loadavg()}). A run replaces the rows it measures and keeps the others (other file "
        "systems, or a rebuild left out with `--no-rebuild`)."
    )
    notes = [
        "- Layouts: plain `<root>/<id>/`, sharded `<root>/<id[:2]>/<id>/` (256 shard directories). "
        "Population written in bulk (the records a commit writes), then `retain.index.rebuild()` "
        "(the `rebuild` figure). `get_hit`: median of `get(BenchCell, config)` of random committed "
        "cells; `commit`: median of `.commit()` of new cells, index on; `listing`: "
        "`iter_directories()` of everything; `first_query_after_commit`: `get.all(BenchCell, "
        "where={'i': 5})` (one match) right after a commit in this process (journal, then the storage's "
        "change check and listing: the whole root for plain, the one shard that changed for "
        "sharded); `settled_query`: the same query when nothing changed.",
    ]
    # Keep the rows of other labels: merge the figures of this run into the section.
    old = _read_section()
    measured = {f["name"] for f in FIGURES}
    kept = [f for f in old if f["name"] not in measured]
    merged = Figures()
    merged.extend({**f, "_summary": f.get("_summary", "?"), "_baseline_summary": f.get("_baseline_summary", "-")}
                  for f in kept)
    merged.extend(FIGURES)
    merged.write_section(RESULTS, SECTION, intro, notes, log)


def _read_section() -> list[dict[str, Any]]:
    """The figures of the section's JSON block, with the table's summaries, as last written."""
    try:
        with open(RESULTS) as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    if SECTION + "\n" not in text:
        return []
    body = text.split(SECTION + "\n", 1)[1].split("\n## ", 1)[0]
    summaries = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| layout_") and len(cells) == 6:
            summaries[cells[0]] = (cells[1], cells[2])
    found = []
    if "```" in body:
        for line in body.split("```")[1].strip().splitlines():
            entry = json.loads(line)
            measured, baseline = summaries.get(entry["name"], ("?", "-"))
            found.append({**entry, "_summary": measured, "_baseline_summary": baseline})
    return found


def describe(directory: str) -> str:
    """The file system of `directory`, from /proc/mounts."""
    best = ("", "?", "?")
    try:
        with open("/proc/mounts") as handle:
            for line in handle:
                device, mount, kind = line.split()[:3]
                if (directory + "/").startswith(mount.rstrip("/") + "/") and len(mount) >= len(best[0]):
                    best = (mount, kind, device)
    except OSError:
        pass
    return f"{best[1]} on {best[2]} (mounted at {best[0]})"


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__, "update RESULTS.md even with --quick or --n")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK:,} results")
    parser.add_argument("--n", type=int, default=None, help=f"results per layout (default {FULL:,})")
    parser.add_argument("--dir", default=None, help="where to put the storages (default: .bench-tmp/)")
    parser.add_argument("--label", default="ext4", help="the name of this file system in the figures")
    parser.add_argument("--keep", default=None, help="keep the populations in this directory (and reuse them)")
    parser.add_argument("--layouts", default="plain,sharded", help="which layouts (comma-separated)")
    parser.add_argument("--no-rebuild", action="store_true",
                        help="with --keep: use the index a previous run built (no rebuild figure)")
    args = parser.parse_args(argv)
    n = args.n or (QUICK if args.quick else FULL)
    full = n == FULL and not args.quick
    start = time.perf_counter()
    load_at_start = loadavg()
    populate_s: dict[str, float] = {}
    roots: dict[str, str] = {}
    holders: list[Any] = []
    try:
        for layout in args.layouts.split(","):
            shard = LAYOUTS[layout]
            if args.keep:
                work = os.path.join(os.path.abspath(args.keep), f"{layout}-{n}")
                os.makedirs(work, exist_ok=True)
            else:
                holder = _in(args.dir, layout) if args.dir else scratch(f"layout-{layout}-", log=log, timed=True)
                holders.append(holder)
                work = holder.__enter__()
            root = roots[layout] = os.path.join(work, "storage")
            log(f"{args.label} {layout}: n={n:,} root={root} load={loadavg()}")
            populate_s[layout] = populate(root, shard, n)
            log(f"  populated in {populate_s[layout]:.0f} s")
        results = measure(roots, n, reps=2000 if n >= 100_000 else 400, rebuild=not (args.keep and args.no_rebuild))
        for root in roots.values():
            retain.index.make_index(None, LocalStorage(root)).close()
    finally:
        for holder in holders:
            holder.__exit__(None, None, None)
    if set(results) == set(LAYOUTS):
        report(args.label, n, results, populate_s)
    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (full or args.write_results) and set(results) == set(LAYOUTS):
        where = describe(os.path.abspath(args.keep or args.dir or os.path.join(REPO, ".bench-tmp")))
        write_section(args.label, n, seconds, load_at_start, where)
    return 0


def _in(directory: str, layout: str) -> Any:
    import contextlib
    import shutil
    import tempfile

    @contextlib.contextmanager
    def holder() -> Any:
        os.makedirs(directory, exist_ok=True)
        work = tempfile.mkdtemp(prefix=f"layout-{layout}-", dir=directory)
        try:
            yield work
        finally:
            t0 = time.perf_counter()
            shutil.rmtree(work, ignore_errors=True)
            log(f"  removed {work} in {time.perf_counter() - t0:.0f} s")

    return holder()


if __name__ == "__main__":
    sys.exit(main())
