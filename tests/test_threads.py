"""Daemon threads started without waiting for them (`retain._threads`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

from retain._threads import Daemon, running


def in_fresh_process(body: str) -> None:
    """Run `body` (asserts over `running()`) in a new interpreter: here, daemons that earlier
    tests left (an index writer ending) change the count at any time."""
    code = "import threading\nfrom retain._threads import Daemon, running\n" + body
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_daemon_runs_its_target_and_says_when_it_ended() -> None:
    in_fresh_process("""
release, ran = threading.Event(), threading.Event()

def target():
    ran.set()
    release.wait(30)

assert running() == 0
daemon = Daemon(target)
assert ran.wait(30) and daemon.is_alive()
assert running() == 1  # threading does not count it: whoever forks asks here
release.set()
for _ in range(3000):
    if not daemon.is_alive():
        break
    threading.Event().wait(0.01)
assert not daemon.is_alive() and running() == 0
""")


def test_a_daemon_is_not_alive_in_a_forked_child() -> None:
    release = threading.Event()
    daemon = Daemon(lambda: release.wait(30))
    try:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write_end, b"alive" if daemon.is_alive() or running() else b"gone")
            os._exit(0)
        os.close(write_end)
        answer = os.read(read_end, 16)
        os.close(read_end)
        os.waitpid(pid, 0)
        assert answer == b"gone" and daemon.is_alive()
    finally:
        release.set()


def test_join_waits_until_the_daemon_is_no_longer_counted() -> None:
    in_fresh_process("""
release = threading.Event()
daemon = Daemon(lambda: release.wait(30))
assert not daemon.join(0.05) and running() == 1  # still running: not ended within the timeout
release.set()
assert daemon.join(30) and running() == 0 and not daemon.is_alive()
assert daemon.join(0)  # ended: at once, as often as asked
""")
