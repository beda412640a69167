"""Figures at a million results (issue 15), each against its target and, where there is one, a
baseline measured in the same run. The issue's other figures (commits per second, into the
population; launch overhead; the process pool; a 100,000-cell grid's status and cached launch;
submitting 10,000 cells to Slurm) are measured in the same run by the benchmarks that own them
(`run.py`, `bench_component.py`, `bench_grid.py`), so one run reports every figure.

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_scale.py                   # 1,000,000 results, sharded (the
                                                                 # default layout of a new storage,
                                                                 # shard=2); updates its RESULTS.md
                                                                 # section
    .venv/bin/python benchmarks/bench_scale.py --layout flat     # LocalStorage(root, shard=0)
    .venv/bin/python benchmarks/bench_scale.py --quick           # 2,000 results, seconds; RESULTS.md
                                                                 # untouched unless --write-results

Prints one JSON line per figure on stdout (name, values, baseline, ratio, target, pass), like
`benchmarks/run.py`; progress goes to stderr. The exit status is 0 even when figures miss.

The population (one class, six config leaves, a summary on every tenth result) is generated
once and reused: under ``$RETAIN_BENCH_DIR`` (default ``~/.cache/retain-bench/``), in a
directory named by its size, layout, retain's identity scheme and this generator's version.
Generating writes the records in bulk in worker processes with the code a commit uses (the
identity computation of `retain.element.identify`, `layout.encode_record`,
`layout.interface_directory`), checking every 1,000th record against the record a real commit
would write, then builds the index with `retain.index.rebuild`; a file ``complete.json``
written last marks it whole (a directory without it is generated again). At 1,000,000 results
it takes ~8 GB (a 4 KB block per directory and per record) and ~3 million inodes.

Figures alternate with their baselines where there is one. Memory is measured in a child
process: its peak resident size (``VmHWM``, reset just before the operation through
``/proc/self/clear_refs``) minus its resident size before the operation.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

from _common import Figures, config_of, loadavg, make_log, r, results_parser, run_intro, scratch  # noqa: E402
import retain  # noqa: E402
from retain import Interface, get, storage  # noqa: E402
from retain.identity import SCHEME  # noqa: E402
from retain.storage.layout import (  # noqa: E402
    RECORD_FILE, RECORD_FORMAT, SUMMARY_FILE, encode_record, encode_summary, interface_directory,
)
from retain.storage.local import LocalStorage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
#: Bumped whenever what the generator writes changes: older populations are not reused.
GENERATOR = 1
SHARD = {"flat": 0, "sharded": 2}
#: Every this many results, the generated record is compared with what a commit would write.
CHECK_EVERY = 1000
#: Every this many results has a summary (two values); the others none, which keeps the
#: population's disk use at one 4 KB block per directory and per record.
SUMMARY_EVERY = 10


class BenchRun(Interface):
    """A sweep-like interface: six config leaves, two of them nested (as in bench_index.py)."""

    Config = {"i": 0, "lr": 0.1, "batch_size": 32, "group": 0, "model": {"depth": 2, "width": 64}}


FIGURES = Figures()
log = make_log("bench-scale")


def nested(i: int) -> dict[str, Any]:
    """Cell `i` as the whole resolved config (defaults filled in, nesting as declared)."""
    flat = config_of(i)
    return {"i": flat["i"], "lr": flat["lr"], "batch_size": flat["batch_size"], "group": flat["group"],
            "model": {"depth": flat["model.depth"], "width": 64}}


def summary_of(i: int) -> dict[str, float] | None:
    return {"loss": 1.0 / (1 + i % 1000), "accuracy": (i % 97) / 97} if i % SUMMARY_EVERY == 0 else None


# -- the population -----------------------------------------------------------------------------


def cache_dir() -> str:
    return os.environ.get("RETAIN_BENCH_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "retain-bench")


def population_key(n: int, layout: str) -> str:
    return f"scale-{layout}-{n}-{RECORD_FORMAT}-scheme{SCHEME}-gen{GENERATOR}"


class _Writer:
    """Writes the records of a range of cells, in a worker process (or this one)."""

    def __init__(self, root: str, shard: int) -> None:
        from retain.config import config_spec
        from retain.element import identify
        from retain.modules import class_reference

        self.root, self.shard = root, shard
        self.identify, self.spec = identify, config_spec(BenchRun)
        self.module, self.qualname = class_reference(BenchRun)
        with storage(LocalStorage(root)):
            first = BenchRun(config_of(0))
            self.template = dict(first._retain_record_now())
            self.baseline = self.template["baseline"]

    def record(self, i: int) -> dict[str, Any]:
        """The record of cell `i`: the template with the identity computed as a commit does."""
        state = self.identify(BenchRun, self.spec, nested(i), None, self.baseline)
        record = dict(self.template)
        record.update(id=state.id, config=state.json, canonical_config=state.canonical,
                      version=[config_of(i)], created=_now())
        return record

    def write(self, start: int, stop: int) -> int:
        """Write cells `start`..`stop - 1`; the number written."""
        mkdir, shard, root = os.mkdir, self.shard, self.root
        for i in range(start, stop):
            record = self.record(i)
            if i % CHECK_EVERY == 0:
                self.check(i, record)
            directory = interface_directory(root, record["id"], shard)
            if shard:
                os.makedirs(os.path.dirname(directory), exist_ok=True)
            mkdir(directory)
            with open(os.path.join(directory, RECORD_FILE), "xb") as handle:
                handle.write(encode_record(record))
            summary = summary_of(i)
            if summary is not None:
                with open(os.path.join(directory, SUMMARY_FILE), "xb") as handle:
                    handle.write(encode_summary(summary))
        return stop - start

    def check(self, i: int, record: dict[str, Any]) -> None:
        with storage(LocalStorage(self.root)):
            expected = dict(BenchRun(config_of(i))._retain_record_now())
        mine = dict(record)
        expected.pop("created"), mine.pop("created")
        if mine != expected:
            raise AssertionError(f"generated record of cell {i} differs from a commit's:\n{mine}\n{expected}")


_WRITERS: dict[tuple[str, int], _Writer] = {}


def _write_range(task: tuple[str, int, int, int]) -> int:
    root, shard, start, stop = task
    writer = _WRITERS.get((root, shard))
    if writer is None:
        writer = _WRITERS[root, shard] = _Writer(root, shard)
    return writer.write(start, stop)


def _now() -> str:
    from retain._timestamps import now_iso

    return now_iso()


def population(n: int, layout: str, workers: int, regenerate: bool = False) -> tuple[str, dict[str, Any]]:
    """The storage root of the cached population of `n` results in `layout`, generated if it is
    not there whole; and its description (``complete.json``)."""
    home = os.path.join(cache_dir(), population_key(n, layout))
    root = os.path.join(home, "storage")
    done = os.path.join(home, "complete.json")
    if not regenerate and os.path.exists(done):
        with open(done) as handle:
            info = json.load(handle)
        if os.path.exists(_stripped_marker(root)):
            log("the population's index was left without config leaves (a run was stopped): rebuilding it")
            retain.index.rebuild(root)
            os.remove(_stripped_marker(root))
        return root, info
    if os.path.exists(home):
        log(f"removing the incomplete (or replaced) population {home}")
        shutil.rmtree(home)
    os.makedirs(home)
    log(f"generating {n:,} results ({layout}) in {root} with {workers} workers")
    t0 = time.perf_counter()
    shard = SHARD[layout]
    store = LocalStorage(root, shard=shard)
    with storage(store), retain.index.updates("off"):
        first = BenchRun(config_of(0))  # a real commit: marker, baselines, the first record
        first.commit()
        if summary_of(0):
            first.save_summary(**summary_of(0))  # type: ignore[arg-type]
    step = 5000
    tasks = [(root, shard, start, min(n, start + step)) for start in range(1, n, step)]
    written = 1
    if workers > 1 and len(tasks) > 1:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for count in pool.imap_unordered(_write_range, tasks):
                written += count
                if written // 100_000 != (written - count) // 100_000:
                    log(f"  {written:,} written")
    else:
        for task in tasks:
            written += _write_range(task)
    write_s = time.perf_counter() - t0
    log(f"wrote {written:,} records in {write_s:.1f} s; building the index")
    t1 = time.perf_counter()
    indexed = retain.index.rebuild(root)
    rebuild_s = time.perf_counter() - t1
    if indexed != n:
        raise AssertionError(f"the index holds {indexed:,} results, not {n:,}")
    info = {"n": n, "layout": layout, "shard": shard, "write_s": round(write_s, 1),
            "rebuild_s": round(rebuild_s, 1), "workers": workers, "generator": GENERATOR,
            "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with open(done + ".tmp", "w") as handle:
        json.dump(info, handle)
    os.replace(done + ".tmp", done)
    log(f"population ready: written in {write_s:.0f} s, indexed in {rebuild_s:.0f} s")
    return root, info


def check_population(root: str, n: int, samples: int) -> None:
    """`get` finds a sample of the results by config, with their summaries."""
    rng = random.Random(7)
    with storage(root):
        for i in [0, n - 1, *(rng.randrange(n) for _ in range(samples))]:
            found = get(BenchRun, config_of(i))
            if not found.is_committed():
                raise AssertionError(f"cell {i} of the population at {root} is not found by get")
            if summary_of(i) is not None and found.load_summary() != summary_of(i):
                raise AssertionError(f"cell {i} has summary {found.load_summary()}, not {summary_of(i)}")


def verify_population(root: str) -> dict[str, Any]:
    """`retain verify` of the population, as a user runs it."""
    command = [sys.executable, "-c", "import sys; from retain.cli import console; sys.exit(console())",
               "--storage", root, "verify"]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_child_env())
    return {"exit": done.returncode, "seconds": round(time.perf_counter() - t0, 2),
            "output": (done.stdout + done.stderr).strip().splitlines()[-3:]}


# -- measuring ----------------------------------------------------------------------------------


def timed_ms(fn: Any) -> tuple[float, Any]:
    gc.collect()
    t0 = time.perf_counter_ns()
    out = fn()
    return (time.perf_counter_ns() - t0) / 1e6, out


def alternate(arms: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    """Each arm (a function returning ms) once per round, in an order that alternates."""
    names = list(arms)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names if round_ % 2 == 0 else reversed(names):
            samples[name].append(arms[name]())
    return samples


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO, "src"), HERE, env.get("PYTHONPATH", "")])
    return env


_CHILD = """
import json, sys, time
import retain
from bench_scale import BenchRun
from retain import get

def status_kb(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])

root, what = sys.argv[1], sys.argv[2]
with retain.storage(root):
    get(BenchRun, {"i": 0})  # the storage and its index opened: what every operation needs
    if what == "to_dataframe":
        import pandas  # a library's import is not the operation's memory
    start = status_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # the peak (VmHWM) starts again from the resident size now
    split = {}  # the parts of a split rebuild
    t0 = time.perf_counter()
    if what == "get_all":
        out = get.all(BenchRun)
        size = len(out)
    elif what == "to_table":
        size = len(get.all(BenchRun).to_table())
    elif what == "to_dataframe":
        size = len(get.all(BenchRun).to_dataframe())
    elif what == "rebuild":
        size = retain.index.rebuild(root)
    elif what in ("rebuild_split", "rebuild_split_without_leaves"):
        from bench_scale import rebuild_split
        size, split = rebuild_split(root, leaves=what == "rebuild_split")
    seconds = time.perf_counter() - t0
    peak = status_kb("VmHWM")
print(json.dumps({"start_mb": start / 1024, "peak_mb": peak / 1024, "delta_mb": (peak - start) / 1024,
                  "seconds": seconds, "size": size, **split}))
"""


def child_memory(root: str, what: str) -> dict[str, Any]:
    """Peak resident memory of `what` in a new process, in MB above the resident size before."""
    done = subprocess.run([sys.executable, "-c", _CHILD, root, what], capture_output=True, text=True,
                          env=_child_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe of {what} failed:\n{done.stderr}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {key: r(value) if isinstance(value, float) else value for key, value in out.items()}


def bench_get(large: str, n_large: int, small: str, n_small: int, reps: int, rounds: int) -> None:
    rng = random.Random(1)
    clock = time.perf_counter_ns
    # The same number of distinct cells in each population, each read once before the timed
    # rounds: both arms then find their records in the page cache, and the figure is what the
    # size of the storage costs a lookup. (Random draws over 10,000 hit cells read already,
    # over 1,000,000 cells read for the first time: that would compare the disk with the page
    # cache.) The first reads are reported too, for information.
    cells = {
        "large": rng.sample(range(n_large), min(reps, n_large)),
        "small": rng.sample(range(n_small), min(reps, n_small)),
    }
    roots = {"large": large, "small": small}

    def timed(name: str, keys: list[int]) -> list[int]:
        out = []
        with storage(roots[name]):
            for k in keys:
                t0 = clock()
                found = get(BenchRun, config_of(k))
                out.append(clock() - t0)
                assert found.is_committed(), k
        return out

    first = {name: timed(name, keys) for name, keys in cells.items()}
    per_round = max(1, reps // rounds)
    samples: dict[str, list[int]] = {"large": [], "small": []}
    for round_ in range(rounds):
        gc.collect()
        for name in ("large", "small") if round_ % 2 == 0 else ("small", "large"):
            keys = cells[name]
            samples[name] += timed(name, [keys[(round_ * per_round + j) % len(keys)] for j in range(per_round)])
    m_large = statistics.median(samples["large"]) / 1000
    m_small = statistics.median(samples["small"]) / 1000
    ratio = m_large / m_small
    FIGURES.add(
        "scale_get_hit",
        {f"median_us_{n_large}": r(m_large), f"median_us_{n_small}": r(m_small),
         f"p90_us_{n_large}": r(sorted(samples["large"])[int(0.9 * len(samples["large"]))] / 1000),
         f"first_read_median_us_{n_large}": r(statistics.median(first["large"]) / 1000),
         f"first_read_median_us_{n_small}": r(statistics.median(first["small"]) / 1000),
         "cells_each": len(cells["large"]), "repetitions_each": len(samples["large"])},
        {f"median_us_{n_small}": r(m_small)},
        ratio, f"median <= 60 us at {n_large:,}; {n_large:,}/{n_small:,} ratio <= 1.3",
        m_large <= 60 and ratio <= 1.3,
        f"{m_large:.1f} us ({n_large:,})", f"{m_small:.1f} us ({n_small:,})",
    )


def bench_where(large: str, n_large: int, small: str, n_small: int, reps: int) -> None:
    def arm(root: str, n: int) -> Any:
        def run() -> float:
            with storage(root):
                ms, found = timed_ms(lambda: get.all(BenchRun, where={"group": 7}))
            assert len(found) == n // 100, (len(found), n)
            return ms
        return run

    arms = {"large": arm(large, n_large), "small": arm(small, n_small)}
    for run in arms.values():
        run()
    samples = alternate(arms, reps)
    m_large, m_small = statistics.median(samples["large"]), statistics.median(samples["small"])
    FIGURES.add(
        "scale_where_equality",
        {f"median_ms_{n_large}": r(m_large), f"max_ms_{n_large}": r(max(samples["large"])),
         "matches": n_large // 100, f"median_ms_{n_small}": r(m_small), "repetitions": reps},
        {f"median_ms_{n_small}": r(m_small)}, m_large / m_small,
        f"<= 20 ms for `where` equality matching 1% of {n_large:,}", m_large <= 20,
        f"{m_large:.1f} ms ({n_large // 100:,} of {n_large:,} match)",
        f"{m_small:.1f} ms ({n_small // 100:,} of {n_small:,})",
    )


def bench_query_after_commit(large: str, reps: int, settle: float) -> None:
    """The first query after a commit into the storage (the index learns of it) vs the same
    query once settled; the committed results are deleted again, leaving the population as it
    was."""
    after, steady = [], []
    committed = []
    query = {"i": 5}
    with storage(large):
        get.all(BenchRun, where=query)
        try:
            for k in range(reps):
                committed.append(BenchRun(config_of(50_000_000 + k)).commit())
                after.append(timed_ms(lambda: get.all(BenchRun, where=query))[0])
                time.sleep(settle)  # let the root's modification time settle (coarse clocks)
                get.all(BenchRun, where=query)
                steady.append(timed_ms(lambda: get.all(BenchRun, where=query))[0])
        finally:
            for item in committed:
                item.delete()
            get.all(BenchRun, where=query)
    m_after, m_steady = statistics.median(after), statistics.median(steady)
    FIGURES.add(
        "scale_query_after_commit",
        {"median_ms": r(m_after), "max_ms": r(max(after)), "median_ms_settled": r(m_steady),
         "repetitions": reps},
        {"ops": "the same query, settled", "median_ms": r(m_steady)}, m_after / m_steady,
        "<= 20 ms for the first query after a commit", m_after <= 20,
        f"{m_after:.1f} ms", f"{m_steady:.1f} ms (settled)",
    )


def bench_bulk(large: str, n: int, reps: int) -> None:
    """get.all to a collection, to_table and to_dataframe of the whole population: each timed
    `reps` times here and once in a child process, which measures its memory (the figure is
    the median of all)."""
    with storage(large):
        get.all(BenchRun)[:1].to_dataframe()  # warm: the index, pandas
    for name, target_ms in (("get_all", 1000), ("to_table", 5000), ("to_dataframe", 5000)):
        samples = []
        with storage(large):
            fn = {"get_all": lambda: get.all(BenchRun), "to_table": lambda: get.all(BenchRun).to_table(),
                  "to_dataframe": lambda: get.all(BenchRun).to_dataframe()}[name]
            for _ in range(reps):
                ms, out = timed_ms(fn)
                samples.append(ms)
                assert len(out) == n, (name, len(out))
                del out
        mem = child_memory(large, name)
        assert mem["size"] == n, mem
        samples.append(mem["seconds"] * 1000)
        m = statistics.median(samples)
        mem_ok = mem["delta_mb"] <= 300 if name == "get_all" else True
        target = f"<= {target_ms / 1000:g} s for {n:,}" + ("; memory <= 300 MB" if name == "get_all" else "")
        FIGURES.add(
            f"scale_{name}",
            {"median_ms": r(m), "runs_ms": [r(x) for x in samples], "rows": n, "memory": mem},
            None, None, target, m <= target_ms and mem_ok,
            f"{m / 1000:.2f} s; +{mem['delta_mb']:.0f} MB peak",
        )
        log(f"{name} done")


def read_all(store: LocalStorage) -> int:
    """Read every record file, in one process: list, open, read."""
    total = 0
    for id in store.iter_directories():
        with open(store.record_path(id), "rb") as handle:
            total += len(handle.read())
    return total


def drop_page_cache() -> bool:
    """Empty the kernel's page cache, so that the next reads come from the disk; False where
    that is not allowed (it needs root)."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")
    except OSError:
        return False
    return True


def bench_rebuild(large: str, n: int, rounds: int) -> float:
    """`rebuild` in a child process (its time and memory) between two reads of every record
    here, `rounds` times: read, rebuild, read, rebuild, ... read. Returns the median read (ms)."""
    store = LocalStorage(large)
    read_all(store)  # warm the page cache for both
    loads: list[float] = []
    reads = [timed_ms(lambda: read_all(store))[0]]
    rebuilds: list[dict[str, Any]] = []
    for _ in range(rounds):
        loads.append(round(os.getloadavg()[0], 2))
        rebuilds.append(child_memory(large, "rebuild"))
        assert rebuilds[-1]["size"] == n, rebuilds[-1]
        reads.append(timed_ms(lambda: read_all(store))[0])
    m_rebuild = statistics.median(x["seconds"] * 1000 for x in rebuilds)
    m_read = statistics.median(reads)
    mem = max(x["delta_mb"] for x in rebuilds)
    ratio = m_rebuild / m_read
    FIGURES.add(
        "scale_rebuild",
        {"median_ms": r(m_rebuild), "runs_ms": [r(x["seconds"] * 1000) for x in rebuilds], "results": n,
         "load_average_per_round": loads, "memory": rebuilds},
        {"ops": "list + open + read every record file, one process", "median_ms": r(m_read),
         "runs_ms": [r(x) for x in reads]},
        ratio, "ratio <= 2x (warm page cache)", ratio <= 2.0,
        f"{m_rebuild / 1000:.1f} s; +{mem:.0f} MB peak", f"{m_read / 1000:.1f} s (read all {n:,} records)",
    )
    return m_read


def rebuild_split(root: str, leaves: bool = True) -> tuple[int, dict[str, float]]:
    """`retain.index.rebuild(root)` with every record read and parsed first (held in memory),
    then given to the index: the time of the reading (`read_ms`) and of the index's one writer
    alone (`write_ms`, up to its commit). Without `leaves`, the writer is given no config leaves:
    the difference is what they cost it. Times in ms. (For measurement only: the index then answers no
    `where`; a rebuild with leaves mends it.)"""
    from contextlib import contextmanager

    import retain.index
    from retain.index import _rebuild_workers

    real = _rebuild_workers.read_chunks
    times: dict[str, float] = {}

    @contextmanager
    def read_first(store: Any, ids: list[str], size: int) -> Any:
        t0 = time.perf_counter()
        with real(store, ids, size) as chunks:
            read = list(chunks)
        if not leaves:
            for chunk in read:
                for _, entry, _ in chunk:
                    if entry is not None:
                        entry.leaves = []
        t1 = time.perf_counter()
        times["read_ms"] = (t1 - t0) * 1000
        yield iter(read)
        times["write_ms"] = (time.perf_counter() - t1) * 1000

    _rebuild_workers.read_chunks = read_first
    try:
        size = retain.index.rebuild(root)
    finally:
        _rebuild_workers.read_chunks = real
    return size, times


def bench_rebuild_split(large: str, n: int, read_ms: float) -> None:
    """For information: the rebuild's writer alone, with every record read first, with and
    without the config leaves, against the read of every record that `bench_rebuild` timed."""
    marker = _stripped_marker(large)
    with open(marker, "w"):
        pass  # until the index is whole again: a stopped run leaves it without config leaves
    try:
        bare = child_memory(large, "rebuild_split_without_leaves")
    finally:
        whole = child_memory(large, "rebuild_split")  # second: it leaves the index whole again
    os.remove(marker)
    assert bare["size"] == whole["size"] == n, (bare, whole)
    write_ms, bare_ms = whole["write_ms"], bare["write_ms"]
    ratio = write_ms / read_ms
    FIGURES.add(
        "scale_rebuild_writer",
        {"write_ms": r(write_ms), "write_without_leaves_ms": r(bare_ms), "leaves_ms": r(write_ms - bare_ms),
         "read_first_ms": whole["read_ms"], "results": n},
        {"ops": "list + open + read every record file, one process (scale_rebuild's baseline)",
         "median_ms": r(read_ms)},
        ratio, "informational: the index's writer alone, every record read first (scale_rebuild: <= 2x)", True,
        f"{write_ms / 1000:.1f} s, of which config leaves {(write_ms - bare_ms) / 1000:.1f} s",
        f"{read_ms / 1000:.1f} s (read all {n:,} records)",
    )


def _stripped_marker(root: str) -> str:
    """A file beside the population's storage while its index may lack config leaves."""
    return os.path.join(os.path.dirname(root), "index-without-leaves")


def bench_rebuild_from_disk(large: str, n: int) -> None:
    """For information: reading every record, then `rebuild`, each right after emptying the
    page cache (what a rebuild after a restart costs). Not measured where the page cache may
    not be emptied."""
    store = LocalStorage(large)
    if not drop_page_cache():
        log("rebuild from disk not measured: emptying the page cache needs root")
        return
    read_ms = timed_ms(lambda: read_all(store))[0]
    drop_page_cache()
    rebuilt = child_memory(large, "rebuild")
    assert rebuilt["size"] == n, rebuilt
    ratio = rebuilt["seconds"] * 1000 / read_ms
    FIGURES.add(
        "scale_rebuild_from_disk",
        {"median_ms": r(rebuilt["seconds"] * 1000), "results": n, "memory": rebuilt},
        {"ops": "list + open + read every record file, one process, from an emptied page cache",
         "median_ms": r(read_ms)},
        ratio, "informational: scale_rebuild from disk (its target is the warm figure's)", True,
        f"{rebuilt['seconds']:.0f} s", f"{read_ms / 1000:.0f} s (read all {n:,} records)",
    )


# -- results ------------------------------------------------------------------------------------


def grid_population(cells: int) -> str:
    """The storage of bench_grid's launched grid of `cells`, kept beside the populations (built
    by its first use, ~3 minutes at 100,000 cells, then reused)."""
    return os.path.join(cache_dir(), f"grid-{cells}-{RECORD_FORMAT}-scheme{SCHEME}", "storage")


def bench_runs_and_sweeps(large: str, full: bool) -> None:
    """The figures of the issue that are not lookups in the population, measured in this run
    by the benchmarks that own them (their figures join this run's): commits into the
    population (`benchmarks/run.py`), launch and the process pool (`bench_component.py`), a
    grid's status, launching its cached cells and submitting to Slurm (`bench_grid.py`)."""
    import bench_component
    import bench_grid
    import run as bench_run

    for module in (bench_run, bench_component, bench_grid):
        module.FIGURES = FIGURES  # type: ignore[attr-defined]
    cells, slurm_cells = (100_000, 10_000) if full else (1_000, 200)
    # What the rebuild wrote (the index, hundreds of MB at 1,000,000) reaches the disk first:
    # its write-back would slow the files that launch creates.
    os.sync()
    with scratch("scale-runs-") as work:
        bench_component.bench_launch(work, 1500 if full else 300, 10 if full else 4)
        bench_component.bench_pool(work, 200, 4, 3 if full else 1)
        bench_component.bench_pool_latency(work, 100, 3 if full else 1)
        bench_component.bench_pool(work, 200, 4, 3 if full else 1, fresh=True)
        bench_component.bench_pool_latency(work, 100, 3 if full else 1, fresh=True)
        log("launch and pool done")
        # After launch: the commits it deletes again would slow the files launch creates (see
        # the note on ext4 in the section).
        bench_run.bench_commit_rate(work, 2_000 if full else 200, 6 if full else 2, into=large)
        log("commit rate done")
        population = grid_population(cells) if full else os.path.join(work, "grid")
        grid, built, launched = bench_grid.populate(cells, population)
        with retain.storage(population):
            report = bench_grid.bench_status(grid, launched, 3, cells / 100_000)
            bench_grid.bench_launch(report, built, len(grid), 3, cells / 100_000)
        del grid, report
        with retain.storage(os.path.join(work, "slurm")):
            bench_grid.bench_slurm(slurm_cells, slurm_cells / 10_000, None if full else 64)
        log("grid and slurm done")


def fresh_memory_s_per_gb() -> float:
    """Seconds per GB for a new process to allocate and first touch 256 MB. On a virtual
    machine this varies (a page the host took back faults there too), and with it the bulk
    figures, which allocate ~1 GB."""
    code = "import time; t = time.perf_counter(); b = bytearray(256 << 20); print(time.perf_counter() - t)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout) * 4


def write_section(args: Any, seconds: float, load_start: str, info: dict[str, Any], memory_s: float) -> None:
    mode = f"{args.n:,} results, {args.layout} layout" + (", quick" if args.quick else "")
    intro = run_intro("bench_scale.py", mode, seconds, load_start) + (
        f" Population generated {info['created']} in {info['write_s']:.0f} s with {info['workers']} "
        f"workers plus {info['rebuild_s']:.0f} s of `rebuild`, then reused; not counted in the run."
        f" Fresh memory at the start: {memory_s:.2f} s per GB to allocate and first touch in a new "
        "process (it varies on a virtual machine; the bulk figures allocate ~1 GB)."
    )
    notes = [
        "- scale_get_hit: `get(BenchRun, config)` of the same number of distinct random committed cells "
        "in the population and in a population of the baseline's size (same layout), each read once "
        "before the timed rounds (the page cache then holds both samples: the figure is what the "
        "storage's size costs a lookup; `first_read_*` are those first reads), alternating rounds; "
        "ratio = large/small.",
        "- scale_where_equality: `get.all(BenchRun, where={'group': 7})`: 1% match; baseline the same "
        "query over the small population.",
        "- scale_query_after_commit: `get.all(BenchRun, where={'i': 5})` right after a commit into "
        "the population (the query finds what changed), vs the same query once settled; the "
        "commits are deleted afterwards.",
        "- scale_get_all, scale_to_table, scale_to_dataframe: the whole population, timed here and "
        "in a child process that measures `memory`: its peak resident size minus its resident "
        "size just before (after importing retain, pandas for the frame, and opening the index); "
        "index pages read through SQLite's memory map count in it (a whole-class listing reads "
        "without the map).",
        "- scale_rebuild: `retain.index.rebuild()` in a child process (time and `memory` as above) "
        "vs reading every record file in one process, before and after it, warm page cache. "
        "scale_rebuild_writer (for information): the same rebuild with every record read and parsed "
        "first, timing the index's one writer alone (`write_ms`, to its commit), and again "
        "without the config leaves (`write_without_leaves_ms`), against the same read. "
        "scale_rebuild_from_disk (with `--from-disk`, root only, for information): both right "
        "after emptying the page cache, last in the run.",
        "- population_check: `get` finds a sample of the generated results by config; in quick "
        "runs, `retain verify` of the population passes.",
        "- commit_rate: a loop of `.commit()` of new results into the population (its index "
        "updated), vs a loop of mkdir + write + rename in the population's own shard "
        "directories (entries named so that retain ignores them), alternating rounds "
        "(`benchmarks/run.py`); both are deleted again afterwards. On ext4 without a journal, "
        "creating inodes right after many were deleted is slow for minutes (the allocator skips "
        "recently deleted inodes one by one): runs close together slow each other down, and "
        "launch (which creates files) is measured before these deletions.",
        "- launch_overhead, pool_200x50ms, pool_per_component (and their `_fresh`, with "
        "`fresh_process: True`): as in the Components section "
        "(`benchmarks/bench_component.py`), in a new storage: their cost is per run, not per "
        "stored result.",
        "- grid_status, grid_launch_cached, slurm_submit: as in the Grids section "
        "(`benchmarks/bench_grid.py`); the launched 100,000-cell grid is kept beside the "
        "populations and reused.",
    ]
    title = f"## Scale ({args.layout})"
    FIGURES.write_section(RESULTS, title, intro, notes, log)


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__, "update RESULTS.md in quick mode, or with --n, too")
    parser.add_argument("--quick", action="store_true", help="2,000 results and few repetitions (seconds)")
    parser.add_argument("--n", type=int, default=None, help="results in the large population (1,000,000)")
    parser.add_argument("--small", type=int, default=None, help="results in the baseline population (10,000)")
    parser.add_argument("--layout", choices=sorted(SHARD), default="sharded",
                        help="sharded <root>/<id[:2]>/<id>/ (a new storage's default), or flat (plain) <root>/<id>/")
    parser.add_argument("--workers", type=int, default=2, help="processes that generate the population")
    parser.add_argument("--regenerate", action="store_true", help="generate the populations again")
    parser.add_argument("--from-disk", action="store_true",
                        help="also time rebuild and the read of every record from an emptied page "
                             "cache (root only; ~10 minutes at 1,000,000 on a slow disk)")
    parser.add_argument("--populate-only", action="store_true", help="generate the populations, measure nothing")
    args = parser.parse_args(argv)
    args.n = args.n or (2_000 if args.quick else 1_000_000)
    args.small = args.small or (200 if args.quick else 10_000)
    full = not args.quick and args.n == 1_000_000
    start = time.perf_counter()
    load_start = loadavg()
    log(f"n={args.n:,} small={args.small:,} layout={args.layout} cache={cache_dir()} load={load_start}")

    large, info = population(args.n, args.layout, args.workers, args.regenerate)
    small, _ = population(args.small, args.layout, args.workers, args.regenerate)
    if args.populate_only:
        return 0
    memory_s = fresh_memory_s_per_gb()
    log(f"fresh memory: {memory_s:.2f} s per GB")
    start = time.perf_counter()  # the run, without generating the populations
    t0 = time.perf_counter()
    check_population(large, args.n, 200 if full else 20)
    check_population(small, args.small, 20)
    check = {"sampled": 222 if full else 42, "seconds": r(time.perf_counter() - t0)}
    verified: dict[str, Any] | None = None
    if args.n <= 20_000:
        verified = verify_population(large)
    FIGURES.add(
        "population_check",
        {"get": check, "verify": verified, "population": info},
        None, None, "get finds sampled results by config; retain verify passes (quick)",
        verified is None or verified["exit"] == 0,
        f"{check['sampled']} sampled found" + ("" if verified is None else
                                              f"; verify exit {verified['exit']}"),
    )

    bench_get(large, args.n, small, args.small, reps=20_000 if full else 2_000, rounds=10 if full else 4)
    log("get done")
    bench_where(large, args.n, small, args.small, reps=20 if full else 4)
    log("where done")
    bench_query_after_commit(large, reps=3 if full else 2, settle=2.1 if full else 0.05)
    log("query after commit done")
    bench_bulk(large, args.n, reps=2)
    # Right after the bulk reads: rebuild reads the old index too (to empty it), from the page
    # cache as they left it.
    read_ms = bench_rebuild(large, args.n, rounds=1 if full else 2)
    log("rebuild done")
    bench_rebuild_split(large, args.n, read_ms)
    log("rebuild split done")
    bench_runs_and_sweeps(large, full)
    if args.from_disk:  # last: it leaves the page cache empty
        bench_rebuild_from_disk(large, args.n)
        log("rebuild from disk done")

    seconds = time.perf_counter() - start
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (full or args.write_results):
        write_section(args, seconds, load_start, info, memory_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
