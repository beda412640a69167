"""A storage of known results and a real `retain ui` process over it, for tests/test_ui*.py."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import retain

#: The project the storage holds: data, training runs with files (one fails), a sweep of
#: 150 interfaces with summaries, and a component that runs for as long as its config says.
PROJECT = '''
import os
import time

import numpy as np

from retain import Component, Interface


class Data(Interface):
    Config = {"n": 10}


class Train(Component):
    Config = {"lr": 0.1, "depth": 2, "data": None, "fail": False}

    def __call__(self):
        print(f"training with lr={self.config.lr}")
        curve = np.array([1.0 / (1.0 + step * self.config.lr) for step in range(40)])
        self.save_file("curve.npy", curve)
        self.save_file("weights.npy", np.arange(12.0).reshape(3, 4))
        self.save_file("notes.txt", "notes of this run")
        self.save_file("params.json", {"lr": self.config.lr, "layers": [4, 4]})
        with open(self.local_directory("plot.png"), "wb") as handle:
            handle.write(PNG)
        if hasattr(self, "log_metrics"):
            for step, value in enumerate(curve):
                self.log_metrics({"loss": float(value)}, step=step)
        if self.config.fail:
            raise ValueError("boom")
        self.save_summary(loss=float(curve[-1]), accuracy=1.0 - float(curve[-1]))


class Long(Interface):
    Config = {"points": 100_000}


class Point(Interface):
    Config = {"x": 0, "group": 0}


class Slow(Component):
    Config = {"seconds": 30.0}

    def __call__(self):
        end = time.time() + self.config.seconds
        step = 0
        while time.time() < end:
            print(f"tick {step}", flush=True)
            if hasattr(self, "log_metrics"):
                self.log_metrics({"progress": float(step)}, step=step)
            step += 1
            time.sleep(0.2)
'''


def png(width: int = 24, height: int = 16) -> bytes:
    """A small valid PNG (a colour gradient), written without an imaging library."""
    raw = b"".join(
        b"\x00" + b"".join(bytes((x * 10 % 256, y * 15 % 256, 160)) for x in range(width)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write_project(root: Path) -> None:
    (root / "uiproject.py").write_text(PROJECT + f"\nPNG = {png()!r}\n")


def populate(root: Path) -> dict[str, Any]:
    """Write the project into `root` and fill `root/storage`; the ids made, by role."""
    write_project(root)
    sys.path.insert(0, str(root))
    try:
        import uiproject

        with retain.storage(root / "storage"):
            data = retain.get(uiproject.Data, {"n": 5}).commit()
            trains = [retain.get(uiproject.Train, {"lr": lr, "data": data}).launch() for lr in (0.1, 0.2, 0.3)]
            failed = retain.get(uiproject.Train, {"lr": 0.5, "fail": True})
            try:
                failed.launch()
            except Exception:
                pass
            long = retain.get(uiproject.Long)
            import numpy as np

            long.save_file("signal.npy", np.sin(np.arange(long.config.points) / 500.0))
            long.commit()
            points = []
            for x in range(150):
                point = retain.get(uiproject.Point, {"x": x, "group": x % 3}).commit()
                point.save_summary(y=float((x - 75) ** 2), label=f"p{x}")
                points.append(point.id)
            from retain.index import _updates

            _updates.flush()
            return {
                "data": data.id, "trains": [t.id for t in trains], "failed": failed.id, "points": points,
                "long": long.id,
            }
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("uiproject", None)


CONSOLE = [sys.executable, "-c", "from retain.cli import console; console()"]


class Server:
    """A `retain ui` subprocess on a free port; `url` as it printed it."""

    def __init__(self, storage: Path, cwd: Path, *words: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
        self.process = subprocess.Popen(
            [*CONSOLE, "--storage", str(storage), "ui", "--port", "0", *words],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        self.first_lines = [self.process.stdout.readline()]
        line = self.first_lines[0]
        if "http://" not in line:
            self.stop()
            raise AssertionError(f"retain ui did not print its URL: {line!r}; stderr: {self.stderr_text()}")
        self.url = line[line.index("http://"):].split()[0]
        self.base = self.url.split("?")[0]

    def stderr_text(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.base + path.lstrip("/"), headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def json(self, path: str, status: int = 200, **kwargs: Any) -> Any:
        code, _, body = self.get(path, **kwargs)
        assert code == status, (path, code, body[:500])
        return json.loads(body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def start_slow(root: Path, seconds: float) -> subprocess.Popen[str]:
    """Launch `Slow` in another process (it runs for `seconds`); returns once it runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETAIN_")}
    code = (
        "import retain, uiproject; "
        f"retain.get(uiproject.Slow, {{'seconds': {seconds}}}).launch()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=root,
        env={**env, "RETAIN_STORAGE": str(root / "storage"), "PYTHONPATH": os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    return process


def wait_for(condition: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@contextmanager
def serving(root: Path) -> Iterator[dict[str, Any]]:
    """A populated storage under `root` and a `retain ui` server over it, stopped on exit: the
    world that the HTTP and the browser tests look at (``root``, ``server`` and the ids)."""
    ids = populate(root)
    server = Server(root / "storage", root)
    try:
        yield {"root": root, "server": server, **ids}
    finally:
        server.stop()
