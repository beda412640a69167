"""Performance figures of retain, each against its target and, where there is one, a baseline
measured in the same run on the same disk.

Usage (from the repository root):

    .venv/bin/python benchmarks/run.py            # full run, writes benchmarks/RESULTS.md
    .venv/bin/python benchmarks/run.py --quick    # smaller storages and fewer repetitions;
                                                  # writes RESULTS.md only with --write-results

Prints one JSON line per figure on stdout: name, values, baseline, ratio, target, pass.
Progress goes to stderr. The exit status is 0 even when figures miss (read `pass`).

Method: every time is measured with `time.perf_counter_ns` around one call, over many
repetitions, and reported as the median (µs). Where a figure compares retain with a baseline,
the two are measured in alternating rounds, in directories of the same file system
(`<repo>/.bench-tmp/`, removed at the end), so that drift and caching affect both alike.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

from _common import Figures, TMP_ROOT, loadavg, make_log, r, replace_preamble, results_parser, scratch  # noqa: E402
import retain  # noqa: E402
from retain import Interface, get, settings, storage  # noqa: E402
from retain.storage.local import LocalStorage  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
NS_PER_US = 1000.0


class BenchItem(Interface):
    """The small interface every figure uses: one integer of configuration."""

    Config = {"i": 0}


# -- helpers ----------------------------------------------------------------------------------


def median_us(samples: list[int]) -> float:
    return statistics.median(samples) / NS_PER_US


def pct_us(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / NS_PER_US


def time_each(fn: Callable[[Any], object], items: Iterable[Any]) -> list[int]:
    """Time `fn(item)` for each item separately, in ns."""
    clock = time.perf_counter_ns
    out = []
    append = out.append
    for item in items:
        t0 = clock()
        fn(item)
        append(clock() - t0)
    return out


FIGURES = Figures()
log = make_log("bench")


def ids_for(keys: Iterable[int]) -> list[str]:
    return [BenchItem({"i": k}).id for k in keys]


# -- 1. population, get of a committed interface, get of an absent one, from_directory ------


def populate(root: str, n: int) -> float:
    """Commit `n` interfaces {"i": 0..n-1} into `root`; seconds taken."""
    t0 = time.perf_counter()
    with storage(root):
        for k in range(n):
            BenchItem({"i": k}).commit()
    return time.perf_counter() - t0


def bench_get(small: str, n_small: int, large: str, n_large: int, reps: int, rounds: int) -> None:
    rng = random.Random(1)
    per_round = reps // rounds
    samples: dict[str, list[int]] = {"small": [], "large": [], "absent_small": [], "absent_large": []}
    absent_start = n_large + 1_000_000  # configurations committed nowhere
    absent_keys = iter(range(absent_start, absent_start + 4 * reps + 4000))

    def timed(root: str, keys: list[int]) -> list[int]:
        with storage(root):  # the usual way: a storage in force, not a path per call
            return time_each(lambda k: get(BenchItem, {"i": k}), keys)

    # Warm up both (imports, caches, code paths) before anything is timed.
    for root, n in ((small, n_small), (large, n_large)):
        timed(root, [rng.randrange(n) for _ in range(500)])
        timed(root, [next(absent_keys) for _ in range(500)])
    for _ in range(rounds):
        gc.collect()
        for label, root, n in (("small", small, n_small), ("large", large, n_large)):
            keys = [rng.randrange(n) for _ in range(per_round)]
            samples[label] += timed(root, keys)
            samples["absent_" + label] += timed(root, [next(absent_keys) for _ in range(per_round)])

    # Sanity: what was timed did find the committed interfaces, and did not find absent ones.
    assert get(BenchItem, {"i": n_large - 1}, storage=large).is_committed()
    assert not get(BenchItem, {"i": absent_start}, storage=large).is_committed()

    m_small, m_large = median_us(samples["small"]), median_us(samples["large"])
    scaling = m_large / m_small
    FIGURES.add(
        "get_committed",
        {
            f"median_us_{n_small}": r(m_small),
            f"median_us_{n_large}": r(m_large),
            f"p90_us_{n_small}": r(pct_us(samples["small"], 0.9)),
            f"p90_us_{n_large}": r(pct_us(samples["large"], 0.9)),
            "repetitions_each": len(samples["small"]),
        },
        {f"median_us_{n_small}": r(m_small)},
        scaling,
        f"median <= 100 us at {n_small} and {n_large}; {n_large}/{n_small} ratio <= 1.3",
        m_small <= 100 and m_large <= 100 and scaling <= 1.3,
        f"{m_small:.1f} us ({n_small:,}); {m_large:.1f} us ({n_large:,})",
        f"{n_small:,} interfaces (scaling)",
    )
    a_small, a_large = median_us(samples["absent_small"]), median_us(samples["absent_large"])
    FIGURES.add(
        "get_absent",
        {
            f"median_us_{n_small}": r(a_small),
            f"median_us_{n_large}": r(a_large),
            f"p90_us_{n_large}": r(pct_us(samples["absent_large"], 0.9)),
            "repetitions_each": len(samples["absent_small"]),
        },
        None,
        None,
        "median <= 100 us",
        a_small <= 100 and a_large <= 100,
        f"{a_small:.1f} us ({n_small:,}); {a_large:.1f} us ({n_large:,})",
    )


def bench_from_directory(root: str, n: int, reps: int) -> None:
    rng = random.Random(2)
    keys = [rng.randrange(n) for _ in range(reps + 500)]
    store = LocalStorage(root)  # its own layout (sharded, for a new storage)
    paths = [store.local_directory(i) for i in ids_for(keys)]
    time_each(Interface.from_directory, paths[:500])  # warm-up
    gc.collect()
    samples = time_each(Interface.from_directory, paths[500:])
    loaded = Interface.from_directory(paths[-1])
    assert type(loaded) is BenchItem and loaded.config.i == keys[-1]
    m = median_us(samples)
    FIGURES.add(
        "from_directory",
        {"median_us": r(m), "p90_us": r(pct_us(samples, 0.9)), "repetitions": len(samples), "storage_size": n},
        None,
        None,
        "median <= 100 us",
        m <= 100,
        f"{m:.1f} us",
    )


# -- 3. commit vs the bare file-system operations it needs ------------------------------------


def bench_commit(work: str, reps: int, rounds: int, durable: bool, key_base: int) -> None:
    """`.commit()` of fresh interfaces vs the bare operations, in alternating rounds.

    In durable mode the baseline also fsyncs the parent (storage root) after the mkdir, which
    POSIX needs for the new directory entry to survive a crash; the two-fsync variant is
    reported alongside for information.
    """
    label = "commit_durable" if durable else "commit"
    root = os.path.join(work, label + "-retain")
    bare_dirs = {"bare": os.path.join(work, label + "-bare")}
    if durable:
        bare_dirs["bare_parent"] = os.path.join(work, label + "-bare-parent")
    os.makedirs(root)
    for directory in bare_dirs.values():
        os.makedirs(directory)
    with storage(root):
        probe = BenchItem({"i": key_base - 1}).commit()
    with open(os.path.join(probe.local_directory(), "interface.json"), "rb") as handle:
        record = handle.read()  # a real record: the baselines write the same number of bytes
    per_round = max(1, reps // rounds)
    samples: dict[str, list[int]] = {"retain": [], **{arm: [] for arm in bare_dirs}}
    key = key_base
    clock = time.perf_counter_ns

    def fsync_dir(directory: str) -> None:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def bare_commit(directory: str, parent: bool = False) -> None:
        os.mkdir(directory)
        final = os.path.join(directory, "interface.json")
        tmp = final + ".tmp"
        with open(tmp, "xb") as handle:
            handle.write(record)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.rename(tmp, final)
        if durable:
            fsync_dir(directory)
            if parent:
                fsync_dir(os.path.dirname(directory))

    arms = list(samples)
    with settings(durable=durable), storage(root):
        for round_ in range(rounds + 1):  # round 0 warms up and is not kept
            gc.collect()
            items = [BenchItem({"i": key + j}) for j in range(per_round)]  # built, not resolved
            key += per_round
            shift = round_ % len(arms)
            for arm in arms[shift:] + arms[:shift]:  # rotate which arm goes first
                got: list[int] = []
                if arm == "retain":
                    for item in items:
                        t0 = clock()
                        item.commit()
                        got.append(clock() - t0)
                else:
                    parent = arm == "bare_parent"
                    names = [os.path.join(bare_dirs[arm], uuid.uuid4().hex) for _ in range(per_round)]
                    for name in names:
                        t0 = clock()
                        bare_commit(name, parent)
                        got.append(clock() - t0)
                if round_:
                    samples[arm] += got
    assert items[-1].is_committed() and os.path.isfile(os.path.join(items[-1].local_directory(), "interface.json"))
    m = median_us(samples["retain"])
    limit = 1.5 if durable else 3.0
    if durable:
        # The durable baseline is the same operations made durable: a new directory entry
        # survives a power loss only once its parent is fsynced (POSIX), so it is included.
        b = median_us(samples["bare_parent"])
        what = "mkdir + fsync(parent) + write + fsync(file) + rename + fsync(dir)"
        b2 = median_us(samples["bare"])
        baseline: dict[str, Any] = {
            "ops": what,
            "median_us": r(b),
            "p90_us": r(pct_us(samples["bare_parent"], 0.9)),
            "without_fsync_parent_median_us": r(b2),
            "ratio_vs_without_fsync_parent": r(m / b2, 3),
        }
        summary_extra = f"; {b2:.0f} us without fsync(parent), ratio {m / b2:.2f}x"
    else:
        b = median_us(samples["bare"])
        what = "mkdir + write tmp + rename"
        baseline = {"ops": what, "median_us": r(b), "p90_us": r(pct_us(samples["bare"], 0.9))}
        summary_extra = ""
    FIGURES.add(
        label,
        {
            "median_us": r(m),
            "p90_us": r(pct_us(samples["retain"], 0.9)),
            "repetitions": len(samples["retain"]),
            "record_bytes": len(record),
        },
        baseline,
        m / b,
        f"ratio <= {limit}x",
        m / b <= limit,
        f"{m:.1f} us",
        f"{b:.1f} us ({what}){summary_extra}",
    )


# -- 4. commits per second: a loop of commits in one process vs the raw operations --------------


def bench_commit_rate(work: str, per_round: int, rounds: int, into: str | None = None) -> None:
    """Throughput of a loop of `.commit()` in one process (the index updated, as by default:
    its writer thread shares the process) vs a loop of the bare operations, alternating rounds.

    Each round's wall time covers the loop and then `retain.index.flush()`, so index work
    queued during the loop is counted; the rate is commits over the summed wall times.
    `into`: an existing storage to commit into (bench_scale's population), whose new results
    are deleted again at the end; default a new storage under `work`. Into an existing storage
    the bare loop makes its directories beside the results, in the same shard directories
    (named so that retain does not take them for results, and deleted at the end): creating
    an entry in a directory of thousands costs what it costs retain, and whether the file
    system's blocks of those directories are in memory weighs on both alike.
    """
    root = into or os.path.join(work, "rate-retain")
    bare = os.path.join(work, "rate-bare")
    os.makedirs(root, exist_ok=into is not None)
    os.makedirs(bare)
    beside = LocalStorage(root) if into is not None else None  # its layout places the bare entries
    committed: list[BenchItem] = []
    made_bare: list[str] = []
    with storage(root):
        probe = BenchItem({"i": 30_000_000 - 1}).commit()
    with open(os.path.join(probe.local_directory(), "interface.json"), "rb") as handle:
        record = handle.read()
    walls: dict[str, float] = {"retain": 0.0, "bare": 0.0}
    key = 30_000_000
    try:
        with storage(root):
            for round_ in range(rounds + 1):  # round 0 warms up and is not kept
                gc.collect()
                items = [BenchItem({"i": key + j}) for j in range(per_round)]
                key += per_round
                names = [os.path.join(bare, uuid.uuid4().hex) for _ in range(per_round)]
                if beside is not None:
                    names = [os.path.join(os.path.dirname(beside.local_directory(name[-32:])), "bare-" + name[-32:])
                             for name in names]
                    made_bare += names
                    for parent in {os.path.dirname(name) for name in names}:
                        os.makedirs(parent, exist_ok=True)  # a shard no result has yet, as a commit would
                for arm in (("retain", "bare") if round_ % 2 else ("bare", "retain")):
                    t0 = time.perf_counter()
                    if arm == "retain":
                        for item in items:
                            item.commit()
                        retain.index.flush()
                        committed += items
                    else:
                        for name in names:
                            os.mkdir(name)
                            final = os.path.join(name, "interface.json")
                            with open(final + ".tmp", "xb") as handle:
                                handle.write(record)
                            os.rename(final + ".tmp", final)
                    if round_:
                        walls[arm] += time.perf_counter() - t0
    finally:
        for name in made_bare:  # also after a failure: nothing of the bare loop stays
            shutil.rmtree(name, ignore_errors=True)
    count = per_round * rounds
    rate, raw = count / walls["retain"], count / walls["bare"]
    assert get(BenchItem, {"i": key - 1}, storage=root).is_committed()
    if into is not None:
        from retain._lifecycle import remove  # one removal of them all: one pass over the index

        remove([item.id for item in [probe, *committed]], storage=root)
        retain.index.flush()
    FIGURES.add(
        "commit_rate",
        {"commits_per_s": r(rate, 0), "commits": count, "rounds": rounds},
        {"ops": "a loop of mkdir + write tmp + rename" + (" in the storage's directories" if beside is not None else ""),
         "ops_per_s": r(raw, 0)},
        raw / rate,
        ">= 6,000 commits/s",
        rate >= 6000,
        f"{rate:,.0f} commits/s",
        f"{raw:,.0f} /s (mkdir + write tmp + rename{' beside the results' if beside is not None else ''})",
    )


# -- 5. save_file / load_file of a 100 MB .npy vs np.save / np.load ----------------------------


def bench_npy(work: str, reps: int) -> None:
    import numpy as np

    nbytes = 100_000_000
    arr = np.random.default_rng(0).random(nbytes // 8)  # float64, 100 MB
    root = os.path.join(work, "npy-retain")
    bare_dir = os.path.join(work, "npy-bare")
    os.makedirs(bare_dir)
    with storage(root):
        item = BenchItem({"i": -7}).commit()
    retain_path = os.path.join(item.local_directory(), "x.npy")
    bare_path = os.path.join(bare_dir, "x.npy")
    clock = time.perf_counter_ns

    def retain_save() -> None:
        item.save_file("x.npy", arr)

    def bare_save() -> None:
        np.save(bare_path, arr)

    def retain_load() -> object:
        return item.load_file("x.npy")

    def bare_load() -> object:
        return np.load(bare_path)

    save = {"retain": [], "bare": []}
    load = {"retain": [], "bare": []}
    for rep in range(reps + 1):  # rep 0 warms up and is not kept
        order = ("retain", "bare") if rep % 2 else ("bare", "retain")
        for who in order:
            # Alike starting state: no old file to replace, no dirty pages left by the other.
            for path in (retain_path, bare_path):
                if os.path.exists(path):
                    os.unlink(path)
            os.sync()
            t0 = clock()
            (retain_save if who == "retain" else bare_save)()
            took = clock() - t0
            if rep:
                save[who].append(took)
            os.sync()  # write-back outside the timed region; the file stays in the page cache
            gc.collect()
            t0 = clock()
            loaded = (retain_load if who == "retain" else bare_load)()
            took = clock() - t0
            if rep:
                load[who].append(took)
            assert loaded.shape == arr.shape  # type: ignore[attr-defined]
            del loaded
    retain_save()
    assert np.array_equal(item.load_file("x.npy"), arr)
    for kind, data in (("save", save), ("load", load)):
        mb_s = {who: nbytes / (statistics.median(ns) / 1e9) / 1e6 for who, ns in data.items()}
        best = {who: nbytes / (min(ns) / 1e9) / 1e6 for who, ns in data.items()}
        # Best of n: interference (other processes, write-back) only ever slows a repetition.
        ratio = best["retain"] / best["bare"]
        plain = "np.save" if kind == "save" else "np.load"
        FIGURES.add(
            f"npy_{kind}_100MB",
            {
                "best_MB_s": r(best["retain"], 1),
                "median_MB_s": r(mb_s["retain"], 1),
                "median_ratio": r(mb_s["retain"] / mb_s["bare"], 3),
                "repetitions": len(data["retain"]),
            },
            {"ops": plain, "best_MB_s": r(best["bare"], 1), "median_MB_s": r(mb_s["bare"], 1)},
            ratio,
            "throughput ratio (best of n) >= 0.9x",
            ratio >= 0.9,
            f"{best['retain']:.0f} MB/s best, {mb_s['retain']:.0f} median",
            f"{best['bare']:.0f} MB/s best, {mb_s['bare']:.0f} median ({plain})",
        )


# -- 6. import time -------------------------------------------------------------------------


def bench_import(reps: int) -> None:
    python = sys.executable
    # Without PYTHON* variables: PYTHONDONTWRITEBYTECODE would make every run compile retain
    # from source, which is not what an installed package does.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RETAIN_"))}
    commands = {"retain": "from retain import Interface, get", "bare": "pass"}

    def run(code: str) -> int:
        t0 = time.perf_counter_ns()
        subprocess.run([python, "-c", code], check=True, env=env, cwd=REPO)
        return time.perf_counter_ns() - t0

    # The installed package must be this working tree, else the figure measures another retain.
    where = subprocess.run(
        [python, "-c", "import retain, os; print(os.path.realpath(retain.__file__))"],
        check=True, env=env, cwd=REPO, capture_output=True, text=True,
    ).stdout.strip()
    for code in commands.values():
        run(code)  # warm-up
    samples: dict[str, list[int]] = {"retain": [], "bare": []}
    for i in range(reps):
        for who in (("retain", "bare") if i % 2 else ("bare", "retain")):
            samples[who].append(run(commands[who]))
    # What the import loads, for diagnosis: cumulative µs of `import retain` and its modules.
    trace = subprocess.run(
        [python, "-X", "importtime", "-c", commands["retain"]],
        check=True, env=env, cwd=REPO, capture_output=True, text=True,
    ).stderr
    retain_cumulative = None
    modules = 0
    for line in trace.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line[len("import time:"):].split("|")]
        if not parts[0].isdigit():
            continue
        modules += 1
        if parts[2] == "retain":
            retain_cumulative = int(parts[1])
    m, b = median_us(samples["retain"]) / 1000, median_us(samples["bare"]) / 1000
    FIGURES.add(
        "import",
        {
            "median_ms": r(m),
            "repetitions": reps,
            "importtime_retain_cumulative_ms": r(retain_cumulative / 1000 if retain_cumulative else None),
            "modules_imported": modules,
            "retain_file": where,
        },
        {"ops": 'python -c "pass"', "median_ms": r(b)},
        m / b,
        "ratio <= 2x",
        m / b <= 2.0,
        f"{m:.1f} ms",
        f"{b:.1f} ms (python -c pass)",
    )


# -- results ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    fs = "?"
    try:
        best = ""
        with open("/proc/mounts") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 2 and TMP_ROOT.startswith(fields[1]) and len(fields[1]) >= len(best):
                    best, fs = fields[1], f"{fields[2]} on {fields[0]} (mounted at {fields[1]})"
    except OSError:
        pass
    try:
        import numpy

        np_version = numpy.__version__
    except ImportError:
        np_version = "-"
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "python": f"{platform.python_version()} ({sys.executable})",
        "os": platform.platform(),
        "fs": fs,
        "retain": retain.__version__,
        "numpy": np_version,
    }


def cpu_check_us() -> float:
    """Median time of a fixed pure-Python loop: compare start and end of a run (and across
    runs) to see whether other processes competed for the CPU."""
    samples = []
    for _ in range(15):
        t0 = time.perf_counter_ns()
        total = 0
        for k in range(20_000):
            total += k
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / NS_PER_US


def git_head() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--", "src"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return f"commit {head}" + (" (src/ modified)" if dirty else "")


def write_results(mode: str, params: dict[str, Any], seconds: float, info: dict[str, Any]) -> None:
    m = machine()
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    head = [
        "# Benchmark results",
        "",
        "Latest run of `benchmarks/run.py` (rewritten by every full run; `--quick` runs only with",
        "`--write-results`). Medians over many repetitions; baselines measured in the same run,",
        "alternating with retain, on the same file system.",
        "",
        f"- Date: {now}",
        f"- Machine: {m['cores']} cores, {m['cpu']}; {m['os']}",
        f"- Disk: {m['fs']}",
        f"- Python {m['python']}; retain {m['retain']} at {git_head()}; numpy {m['numpy']}",
        f"- Mode: {mode} ({', '.join(f'{k}={v}' for k, v in params.items())}); run took {seconds:.0f} s",
        f"- Population: {info['populate']}",
        f"- Load average (1/5/15 min) at start: {info['load_start']}; at end: {info['load_end']}. "
        f"CPU check (fixed loop, lower is better): {info['cpu_start']:.0f} us at start, "
        f"{info['cpu_end']:.0f} us at end. Other processes on the machine perturb the figures; "
        "ratios, measured alternating with their baselines, are the robust part",
    ]
    notes = [
        "Figures:",
        "",
        "- get_committed: `get(BenchItem, {'i': k})` for random committed k, in storages holding "
        "the two sizes; ratio = large/small median.",
        "- get_absent: `get` of configurations committed nowhere (returns a new, uncommitted interface).",
        "- commit / commit_durable: `.commit()` of a fresh one-key interface (config resolved inside "
        "the timing) vs the bare operations on a record of the same size; durable = "
        "`settings(durable=True)` vs the same operations with fsync of the file and its directory.",
        "- commit_rate: a loop of `.commit()` in one process, index updated (its writer thread in the "
        "same process; the wall time includes the final `retain.index.flush()`), vs a loop of the bare "
        "operations, alternating rounds; ratio = bare rate / retain rate.",
        "- from_directory: `Interface.from_directory(path)` of random committed interfaces.",
        "- npy_save/npy_load: `save_file`/`load_file` of a 100 MB float64 array vs `np.save`/`np.load` "
        "in a sibling directory; old file removed and `os.sync()` before each timed save, loads from "
        "the page cache for both; ratio of best-of-n throughputs (medians in the JSON).",
        "- import: wall time of a fresh `python -c` process, same interpreter, alternating.",
        "",
        "Raw JSON lines of this run:",
    ]
    # Keeps the "## ..." sections that other benchmark scripts maintain (bench_index.py...).
    replace_preamble(RESULTS, FIGURES.markdown(head, notes))
    log(f"wrote {RESULTS}")


def main(argv: list[str] | None = None) -> int:
    parser = results_parser(__doc__, "write RESULTS.md in quick mode too")
    parser.add_argument("--quick", action="store_true", help="small storages, fewer repetitions")
    parser.add_argument("--keep", action="store_true", help="keep the temporary storages (debugging)")
    parser.add_argument(
        "--only", default="", help="comma-separated subset: get,from_directory,commit,npy,import"
    )
    args = parser.parse_args(argv)
    only = set(filter(None, args.only.split(",")))

    def wanted(name: str) -> bool:
        return not only or name in only

    if args.quick:
        p = dict(n_small=2_000, n_large=20_000, get_reps=4_000, commit_reps=600, durable_reps=60, npy_reps=3, import_reps=10)
    else:
        p = dict(n_small=10_000, n_large=100_000, get_reps=20_000, commit_reps=4_000, durable_reps=600, npy_reps=11, import_reps=40)
    start = time.perf_counter()
    with scratch("run-", keep=args.keep, log=log, timed=True) as work:
        info: dict[str, Any] = {"populate": "-", "load_start": loadavg(), "cpu_start": cpu_check_us()}
        log(f"mode={'quick' if args.quick else 'full'} work={work} {p} load={info['load_start']}")
        if wanted("get") or wanted("from_directory"):
            small = os.path.join(work, "small")
            large = os.path.join(work, "large")
            s_small = populate(small, p["n_small"])
            log(f"populated {p['n_small']:,} in {s_small:.1f} s")
            s_large = populate(large, p["n_large"])
            log(f"populated {p['n_large']:,} in {s_large:.1f} s")
            info["populate"] = (
                f"{p['n_small']:,} commits in {s_small:.1f} s, {p['n_large']:,} in {s_large:.1f} s "
                f"({p['n_large'] / s_large:,.0f} commits/s, one process)"
            )
            print(json.dumps({"name": "populate", "values": {
                f"seconds_{p['n_small']}": r(s_small), f"seconds_{p['n_large']}": r(s_large),
                "commits_per_s": r(p["n_large"] / s_large, 0)}}), flush=True)
            if wanted("get"):
                bench_get(small, p["n_small"], large, p["n_large"], p["get_reps"], rounds=10)
                log("get done")
            if wanted("from_directory"):
                bench_from_directory(large, p["n_large"], p["get_reps"])
                log("from_directory done")
        if wanted("commit"):
            bench_commit(work, p["commit_reps"], rounds=10, durable=False, key_base=10_000_000)
            log("commit done")
            bench_commit(work, p["durable_reps"], rounds=10, durable=True, key_base=20_000_000)
            log("durable commit done")
            bench_commit_rate(work, p["commit_reps"] // 2, rounds=10)
            log("commit rate done")
        if wanted("npy"):
            bench_npy(work, p["npy_reps"])
            log("npy done")
        if wanted("import"):
            bench_import(p["import_reps"])
            log("import done")
    seconds = time.perf_counter() - start
    info["load_end"] = loadavg()
    info["cpu_end"] = cpu_check_us()
    print(json.dumps({"name": "environment", "values": {
        "load_start": info["load_start"], "load_end": info["load_end"],
        "cpu_check_us_start": r(info["cpu_start"]), "cpu_check_us_end": r(info["cpu_end"])}}), flush=True)
    log(f"total {seconds:.0f} s; {FIGURES.passed()} figures pass")
    if not args.no_results and (not args.quick or args.write_results) and not only:
        write_results("quick" if args.quick else "full", p, seconds, info)
    return 0


if __name__ == "__main__":
    sys.exit(main())
