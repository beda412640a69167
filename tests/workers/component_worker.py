"""Components for tests/test_component.py and tests/execution/test_execution.py, importable by worker
processes (``component_worker:<Class>``), and a command line to launch them from other
processes: ``python -m component_worker launch --storage S --index I ...``.

Every component appends one line to ``counter`` (with ``O_APPEND``) when its ``__call__``
starts, so tests count runs across processes exactly.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import sys
import time

from retain import Component, get, settings, storage


def count(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


class Work(Component):
    """Counts its run in `counter`; prints; sleeps (until `release` exists); fails or kills
    itself when told."""

    Config = {
        "index": 0,
        "counter": "",
        "sleep": 0.0,
        "fail": "",
        "kill": False,
        "marker": "",
        "salt": "",
        "release": "",
        "atexit": "",
    }

    def __call__(self) -> None:
        config = self.config
        if config.counter:
            count(config.counter, f"{self.config.index} {os.getpid()}")
        if config.atexit:
            atexit.register(count, config.atexit, f"atexit {os.getpid()}")
        if config.marker:
            open(config.marker, "w").close()  # tells a test that the run has started
        print(f"work {config.index} in {os.getpid()}")
        print(f"work {config.index} to stderr", file=sys.stderr)
        sys.stdout.flush()
        os.system(f"echo child process of work {config.index}")
        if config.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        deadline = time.monotonic() + config.sleep
        while time.monotonic() < deadline and not (config.release and os.path.exists(config.release)):
            time.sleep(min(0.02, config.sleep))  # sleeps, or ends early once `release` exists
        if config.fail:
            raise ValueError(config.fail)
        self.save_file("result.json", {"index": config.index, "pid": os.getpid()})


class Hooked(Component):
    """Records each hook with the pid that ran it in `trace`."""

    Config = {"trace": "", "fail": False}

    def on_before_dispatch(self) -> None:
        count(self.config.trace, f"before {os.getpid()}")

    def __call__(self) -> None:
        count(self.config.trace, f"call {os.getpid()}")
        if self.config.fail:
            raise RuntimeError("hooked failure")

    def on_success(self) -> None:
        count(self.config.trace, f"success {os.getpid()}")

    def on_failure(self, exception: BaseException) -> None:
        count(self.config.trace, f"failure {os.getpid()} {type(exception).__name__}")

    def on_finish(self) -> None:
        count(self.config.trace, f"finish {os.getpid()}")

    def on_after_dispatch(self) -> None:
        count(self.config.trace, f"after {os.getpid()} {self.execution.state()}")


class Fragile(Component):
    """Prints, writes its pool worker's pid (its parent) to `started`, then kills itself
    (`kill`: "self"), its worker and itself ("both", as the kernel's out-of-memory killer may),
    or waits until `release` exists. With `once`, it kills only while that file is missing
    (and creates it), so a launch again runs it to the end."""

    Config = {"index": 0, "started": "", "kill": "", "once": "", "release": ""}

    def __call__(self) -> None:
        config = self.config
        print(f"fragile {config.index} printed this", flush=True)
        if config.started:
            with open(config.started + ".tmp", "w") as handle:
                handle.write(str(os.getppid()))
            os.replace(config.started + ".tmp", config.started)
        if config.kill and not (config.once and os.path.exists(config.once)):
            if config.once:
                open(config.once, "w").close()
            if config.kill == "both":
                os.kill(os.getppid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
        deadline = time.monotonic() + 60
        while config.release and not os.path.exists(config.release) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.save_file("result.json", {"index": config.index})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="component_worker")
    parser.add_argument("mode", choices=["launch"])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--counter", default="")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--marker", default="")
    parser.add_argument("--salt", default="")
    parser.add_argument("--release", default="")
    parser.add_argument("--start", default="", help="wait for this file before launching")
    parser.add_argument("--wait", default="true")
    parser.add_argument("--out", default="")
    parser.add_argument("--heartbeat", type=float, default=0.1)
    parser.add_argument("--lease", type=float, default=0.6)
    args = parser.parse_args(argv)
    if args.start:
        deadline = time.monotonic() + 30
        while not os.path.exists(args.start) and time.monotonic() < deadline:
            time.sleep(0.001)
    wait: bool | float = {"true": True, "false": False}[args.wait] if args.wait in ("true", "false") else float(args.wait)
    result: dict[str, object] = {}
    with storage(args.storage), settings(heartbeat=args.heartbeat, lease=args.lease):
        work = get(Work, {"index": args.index, "counter": args.counter, "sleep": args.sleep,
                          "marker": args.marker, "salt": args.salt, "release": args.release})
        try:
            work.launch(wait=wait)
            result = {"state": work.execution.state(), "id": work.id}
        except Exception as exc:
            result = {"error": type(exc).__name__, "message": str(exc), "id": work.id}
    if args.out:
        with open(args.out + ".tmp", "w") as handle:
            json.dump(result, handle)
        os.replace(args.out + ".tmp", args.out)


if __name__ == "__main__":
    main()


class EnvProbe(Component):
    """Saves the value of environment variable `name` and the working directory its run saw."""

    Config = {"name": "", "i": 0}

    def __call__(self) -> None:
        self.save_file("env.json", {"value": os.environ.get(self.config.name), "cwd": os.getcwd()})
