"""Object-store storage (issue 5): round trips and times of `get` and `commit` on S3, against the
local S3-compatible test server (SeaweedFS on 127.0.0.1, started by scripts/services/s3.sh).

Usage (from the repository root):

    .venv/bin/python benchmarks/bench_s3.py                 # updates "## S3 storage" of RESULTS.md
    .venv/bin/python benchmarks/bench_s3.py --no-results    # prints only

Prints one JSON line per figure on stdout (name, values, baseline, ratio, target, pass), like
`benchmarks/run.py`; progress goes to stderr. The exit status is 0 even when figures miss.

Method: requests are counted with a handler on the S3 client's ``before-send`` event, so each
HTTP request the storage sends is one round trip (retries included). Times are medians of
`time.perf_counter_ns` around one call; the baseline of each is the bare S3 operation it
cannot avoid (a GET of the record object; a conditional PUT of it), through the same client,
alternating with retain.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "src"))  # the working tree, even without an install

from _common import Figures, make_log  # noqa: E402
import retain  # noqa: E402
from retain import Interface, get  # noqa: E402
from retain.index._updates import flush  # noqa: E402

RESULTS = os.path.join(HERE, "RESULTS.md")
SECTION = "## S3 storage"
FIGURES = Figures()
#: Seconds added to every request where a figure models a store across a network.
LATENCY = 0.02
log = make_log("bench-s3")


class BenchItem(Interface):
    Config = {"i": 0}


def server() -> dict[str, str]:
    found = {k: os.environ.get(k, "") for k in ("RETAIN_TEST_S3_ENDPOINT", "RETAIN_TEST_S3_BUCKET",
                                                 "RETAIN_TEST_S3_KEY", "RETAIN_TEST_S3_SECRET")}
    if not all(found.values()):
        out = subprocess.run(["bash", os.path.join(REPO, "scripts", "services", "s3.sh")],
                             capture_output=True, text=True, check=True)
        for line in out.stdout.splitlines():
            name, _, value = line.partition("=")
            if name in found:
                found[name] = value
    return found


def median_us(samples: list[int]) -> float:
    return round(statistics.median(samples) / 1000, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200, help="timed repetitions of each operation")
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    s3 = server()
    os.environ["AWS_ACCESS_KEY_ID"] = s3["RETAIN_TEST_S3_KEY"]
    os.environ["AWS_SECRET_ACCESS_KEY"] = s3["RETAIN_TEST_S3_SECRET"]
    os.environ["RETAIN_CACHE_DIR"] = tempfile.mkdtemp(prefix="retain-bench-s3-cache-")
    prefix = f"bench-{uuid.uuid4().hex[:10]}"
    url = f"s3://{s3['RETAIN_TEST_S3_BUCKET']}/{prefix}?endpoint_url={s3['RETAIN_TEST_S3_ENDPOINT']}"
    storage: Any = retain.storage(url).__enter__()
    log(f"storage {url}, cache {storage.cache}")
    storage._check()
    calls: list[tuple[str, str]] = []
    storage.fs.s3.meta.events.register("before-send.s3", lambda request, **_: calls.append((request.method, request.url)))
    client = storage.fs
    bucket = s3["RETAIN_TEST_S3_BUCKET"]
    clock = time.perf_counter_ns
    reps = args.reps

    # -- commit: retain vs the bare conditional PUT of a record-sized object ------------------
    BenchItem({"i": -1}).commit()  # first use: the session and the bucket check
    commit_ns, bare_put_ns, commit_requests = [], [], []
    record_bytes = len(storage.read_record(BenchItem({"i": -1}).id) or b"")
    payload = b"x" * record_bytes
    for i in range(reps):
        item = BenchItem({"i": i})
        calls.clear()
        t0 = clock()
        item.commit()
        commit_ns.append(clock() - t0)
        commit_requests.append(len(calls))
        key = f"{prefix}-bare/{uuid.uuid4().hex}/interface.json"
        t0 = clock()
        client.call_s3("put_object", Bucket=bucket, Key=key, Body=payload, IfNoneMatch="*")
        bare_put_ns.append(clock() - t0)
    flush()
    # with a file saved before the commit
    file_requests = []
    for i in range(20):
        item = BenchItem({"i": 10_000 + i})
        item.save_file("result.json", {"value": i})
        calls.clear()
        item.commit()
        file_requests.append(len(calls))
    worst = max(commit_requests)
    FIGURES.add(
        "s3_commit",
        {"median_us": median_us(commit_ns), "requests_max": worst, "requests_median": statistics.median(commit_requests),
         "requests_with_one_file_max": max(file_requests), "repetitions": reps, "record_bytes": record_bytes},
        {"ops": "conditional PUT of a record-sized object", "median_us": median_us(bare_put_ns)},
        statistics.median(commit_ns) / statistics.median(bare_put_ns),
        "at most 4 round trips",
        worst <= 4 and max(file_requests) <= 4,
        f"{median_us(commit_ns)} us; {worst} request(s), {max(file_requests)} with one file",
        f"{median_us(bare_put_ns)} us (conditional PUT)",
    )

    # -- get: retain (hit and miss) vs the bare GET of the record object ---------------------
    get_ns, bare_get_ns, get_requests, miss_requests = [], [], [], []
    for i in range(reps):
        calls.clear()
        t0 = clock()
        found = get(BenchItem, {"i": i})
        get_ns.append(clock() - t0)
        get_requests.append(len(calls))
        assert found.is_committed()
        t0 = clock()
        client.cat_file(f"{storage.root}/{found.id}/interface.json", max_concurrency=1)
        bare_get_ns.append(clock() - t0)
        calls.clear()
        get(BenchItem, {"i": -2 - i})
        miss_requests.append(len(calls))
    worst = max(get_requests)
    FIGURES.add(
        "s3_get_hit",
        {"median_us": median_us(get_ns), "requests_max": worst, "miss_requests_max": max(miss_requests),
         "repetitions": reps},
        {"ops": "GET of the record object", "median_us": median_us(bare_get_ns)},
        statistics.median(get_ns) / statistics.median(bare_get_ns),
        "at most 3 round trips",
        worst <= 3,
        f"{median_us(get_ns)} us; {worst} request(s) (a miss: {max(miss_requests)})",
        f"{median_us(bare_get_ns)} us (GET)",
    )

    # -- a query on a fresh machine: list and read every record -----------------------------
    flush()
    from retain.storage.fsspec import FsspecStorage

    fresh = FsspecStorage(url, cache_dir=tempfile.mkdtemp(prefix="retain-bench-s3-other-"))
    t0 = clock()
    count = retain.index.rebuild(fresh)
    rebuild_ms = (clock() - t0) / 1e6
    FIGURES.add(
        "s3_rebuild",
        {"ms": round(rebuild_ms, 1), "interfaces": count},
        None, None, "informational: a new machine's index, from the listing and concurrent reads",
        True, f"{rebuild_ms:.0f} ms for {count} interfaces",
    )

    # -- which of many have a file (the finished check of a sweep's status), from a fresh cache
    # with 20 ms added to every request (a store across a network): the lookups overlap.
    import asyncio

    async def delay(**_: Any) -> None:
        await asyncio.sleep(LATENCY)

    ids = [BenchItem({"i": i}).id for i in range(reps)]
    probe = FsspecStorage(url, cache_dir=tempfile.mkdtemp(prefix="retain-bench-s3-probe-"))
    probe._check()
    probe.fs.s3.meta.events.register("before-send.s3", delay)
    many_s, serial_s = [], []
    for round_ in range(3):
        for arm in (("many", "serial") if round_ % 2 else ("serial", "many")):
            t0 = time.perf_counter()
            if arm == "many":
                found_ids = probe.ids_with_file(ids, "interface.json")
            else:
                found_ids = {id for id in ids if probe.store.info(probe._key(id, "interface.json")) is not None}
            (many_s if arm == "many" else serial_s).append(time.perf_counter() - t0)
            assert found_ids == set(ids)
    many, serial = statistics.median(many_s), statistics.median(serial_s)
    FIGURES.add(
        "s3_ids_with_file",
        {"seconds": round(many, 3), "ids": len(ids), "added_latency_ms": LATENCY * 1000, "rounds": len(many_s)},
        {"ops": "a HEAD of each, one after another", "seconds": round(serial, 3)},
        many / serial,
        "ratio <= 0.25",
        many / serial <= 0.25,
        f"{many:.2f} s for {len(ids)} ids (+{LATENCY * 1000:.0f} ms a request)",
        f"{serial:.2f} s (a HEAD at a time)",
    )

    try:
        client.rm(f"{bucket}/{prefix}", recursive=True)
        client.rm(f"{bucket}/{prefix}-bare", recursive=True)
    except Exception as exc:  # the test server's data directory is disposable anyway
        log(f"cleanup: {exc}")
    seconds = time.perf_counter() - started
    if not args.no_results:
        write_results(seconds, reps, s3["RETAIN_TEST_S3_ENDPOINT"])
    return 0


def write_results(seconds: float, reps: int, endpoint: str) -> None:
    intro = (
        f"Latest run of `benchmarks/bench_s3.py` ({_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"SeaweedFS `weed server -s3` on {endpoint}, loopback; {reps} repetitions; run took {seconds:.0f} s)."
    )
    notes = [
        "- s3_ids_with_file: `ids_with_file` (how `retain.status` finds the finished among many) "
        "from an empty cache, with 20 ms added to every request by an asynchronous `before-send` "
        "handler (a store across a network), vs a HEAD of each id one after another; median of 3 "
        "alternating rounds.",
        "- Round trips are HTTP requests counted on the S3 client (`before-send` events). A commit "
        "without files is one conditional PUT of the record (`If-None-Match: *`); with files, a HEAD "
        "of the record (committed already? then its files are left alone), a PUT per file and the "
        "record; the versions of the uploaded files are computed from them (their ETags), not read "
        "back, so that this machine reads its cached copies without fetching them back. A `get` is "
        "one GET of the record (404 when absent). The first use of a storage in "
        "a process adds a connection check and a HEAD of the bucket, once.",
        "- s3_rebuild: `retain.index.rebuild()` from a new cache directory (another machine): one "
        "listing, then records and summaries read concurrently.",
    ]
    FIGURES.write_section(RESULTS, SECTION, intro, notes, log)


if __name__ == "__main__":
    sys.exit(main())
