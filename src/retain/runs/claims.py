"""Exactly-once runs: claims in storage with a heartbeat lease. No server, no lock daemon.

Run n+1 of a component is claimed by creating ``claim-(n+1).json`` exclusively (a hard link
of a complete file: one creator wins, on one machine or many sharing the storage). It may be
claimed only when run n has ended, or when run n's claim is dead: its process is gone from
this host, or its heartbeat is older than the lease the claim declares. A background thread
refreshes the heartbeat of every claim this process holds. Taking over a dead claim is the
same exclusive create, so exactly one taker wins; it records the takeover and ends run n as
"died".

Clocks: the lease is judged against the heartbeat time written by the owner, so hosts that
share a storage need clocks that agree to well within the lease (NTP does); a launcher that
waits also declares a claim dead when it sees its heartbeat unchanged for a whole lease.
"""

from __future__ import annotations

import os
import threading
import time

from .._errors import AlreadyRunningError
from .._host import host_facts, process_gone
from .._log import logger
from .._threads import Daemon
from .._timestamps import now_iso, parse_iso
from ..storage.layout import RUN_FORMAT, claim_file, end_file, heartbeat_file
from .files import RunFiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Claim", "FailedElsewhere", "acquire", "held_here", "why_dead"]


class FailedElsewhere(Exception):
    """The run this launcher waited for (another launcher's) failed: `error` says how."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.error = error


# -- heartbeats -------------------------------------------------------------------------------


class Claim:
    """A run this process holds: its heartbeat is kept alive until `release`."""

    def __init__(self, files: RunFiles, run: int, data: dict[str, Any], durable: bool) -> None:
        self.files = files
        self.run = run
        self.data = data
        self.durable = durable
        self.interval = float(data["heartbeat"])
        self.thread_id = _current_thread_id()
        self.beats = 0
        self.next_due = time.monotonic() + self.interval
        self.superseded = False
        self.released = False

    def beat(self) -> None:
        if self.released:  # released while this beat was due
            return
        self.beats += 1
        self.files.replace(
            heartbeat_file(self.run), {"run": self.run, "time": now_iso(), "beats": self.beats}
        )
        self.files.sync_output()
        if not self.superseded and self.files.has(claim_file(self.run + 1)):
            # Our heartbeat lapsed (a suspended machine, a stalled file system) and another
            # launcher took over: say so where the user will look.
            self.superseded = True
            self.files.event("superseded", self.run)
            try:
                os.write(
                    2,
                    f"retain: run {self.run} in {self.files.directory} was taken over by run "
                    f"{self.run + 1} after its heartbeat lapsed; this run's results will not be "
                    "marked finished\n".encode(),
                )
            except OSError:
                pass

    def check_superseded(self) -> bool:
        if not self.superseded and self.files.has(claim_file(self.run + 1)):
            self.superseded = True
        return self.superseded

    def release(self) -> None:
        self.released = True
        _heartbeats.remove(self)


def _current_thread_id() -> int:
    return threading.get_ident()


class _Heartbeats:
    """One daemon thread per process beating for every claim the process holds."""

    def __init__(self) -> None:
        self.claims: dict[int, Claim] = {}
        self.thread: Daemon | None = None
        self.wake = threading.Condition()
        #: When the thread wakes up next (monotonic); an idle thread wakes up one interval
        #: after it went idle, so a claim added meanwhile is never due before that.
        self.deadline = float("inf")
        self.idle_interval: float | None = None

    def add(self, claim: Claim) -> None:
        with self.wake:
            self.claims[id(claim)] = claim
            self.idle_interval = claim.interval
            if self.thread is None or not self.thread.is_alive():
                self.thread = Daemon(self._loop)  # (not threading.Thread: see Daemon)
            elif claim.next_due < self.deadline:
                # Waking the thread at every launch costs the launch a thread switch: only
                # when the claim is due before the thread wakes up anyway.
                self.wake.notify()

    def remove(self, claim: Claim) -> None:
        with self.wake:
            self.claims.pop(id(claim), None)

    def held(self, directory: str) -> Claim | None:
        for claim in list(self.claims.values()):
            if claim.files.directory == directory:
                return claim
        return None

    def _loop(self) -> None:
        wake = self.wake
        while True:
            with wake:
                now = time.monotonic()
                if not self.claims:
                    if self.idle_interval is None:
                        self.deadline = float("inf")
                        wake.wait()
                    else:
                        self.deadline = now + self.idle_interval
                        wake.wait(self.idle_interval)
                    continue
                due = [c for c in self.claims.values() if c.next_due <= now]
                if not due:
                    self.deadline = min(c.next_due for c in self.claims.values())
                    wake.wait(self.deadline - now)
                    continue
                for claim in due:
                    claim.next_due = now + claim.interval
            for claim in due:
                try:
                    claim.beat()
                except Exception:  # a transient storage error: try again at the next beat
                    logger("retain.runs").warning(
                        "the heartbeat of run %s in %s failed; trying again at the next beat",
                        claim.run, claim.files.directory, exc_info=True,
                    )

    def reset(self) -> None:
        # In a forked child the thread is gone and the claims belong to the parent.
        self.claims = {}
        self.thread = None
        self.wake = threading.Condition()
        self.deadline = float("inf")
        self.idle_interval = None


_heartbeats = _Heartbeats()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_heartbeats.reset)


def held_here(directory: str) -> bool:
    """Whether this process holds the claim of a run in `directory` (the run is here)."""
    return _heartbeats.held(directory) is not None


# -- liveness -------------------------------------------------------------------------------


def why_dead(
    files: RunFiles, run: int, claim: dict[str, Any], observed: dict[int, tuple[Any, float]] | None = None
) -> str | None:
    """Why the claim of `run` is dead, or None while it is alive.

    `observed` (kept by a waiting launcher across calls) remembers when each heartbeat was
    first seen, so a heartbeat unchanged for a whole lease also counts as dead.
    """
    beat = files.heartbeat(run)
    last = beat["time"] if beat else claim["started"]
    lease = float(claim["lease"])
    facts = host_facts()
    pid = claim.get("pid")
    if isinstance(pid, int) and claim.get("host") == facts["host"] and claim.get("pidns") == facts["pidns"]:
        if pid == facts["pid"]:
            if _heartbeats.held(files.directory) is None:
                return f"its process ({pid}, this one) no longer holds it"
        elif process_gone(pid, claim.get("pid_start")):
            return f"its process {pid} on {claim['host']} is gone"
    age = time.time() - parse_iso(last)
    if age > lease:
        return f"no heartbeat for {age:.0f} s (lease {lease:g} s)"
    if observed is not None:
        key = (run, last)
        seen = observed.get(run)
        now = time.monotonic()
        if seen is None or seen[0] != key:
            observed[run] = (key, now)
        elif now - seen[1] > lease:
            return f"its heartbeat did not change for {now - seen[1]:.0f} s (lease {lease:g} s)"
    return None


def _failure_of(files: RunFiles, run: int, end: dict[str, Any]) -> dict[str, Any]:
    claim = files.claim(run) or {}
    for failure in reversed(files.failures()):
        if failure.get("run") == run:
            found = dict(failure)
            break
    else:
        found = {"run": run, "traceback": "", "time": end.get("time"), **(end.get("error") or {})}
    found["message"] = (
        f"{found.get('message', '')} (in run {run} by {_holder(claim)}, which this launch waited "
        "for; launch again to resume)"
    )
    return found


def _holder(claim: dict[str, Any]) -> str:
    return f"{claim.get('host')} pid {claim.get('pid')}, since {claim.get('started')}"


def acquire(
    files: RunFiles,
    describe: str,
    record: dict[str, Any],
    *,
    wait: bool | float,
    heartbeat: float,
    lease: float,
    durable: bool = False,
) -> Claim | None:
    """Claim the next run of the component in `files`; None if it is (or becomes) finished.

    Args:
        describe: how errors name the component (``"EstimatePi [29f034]"``).
        record: facts recorded in the claim (execution, command line...).
        wait: True to wait for a live claim of another launcher, False to fail at once,
            or a number of seconds to wait at most.

    Raises:
        AlreadyRunningError: a live claim exists and `wait` does not allow waiting (longer).
        FailedElsewhere: the run it waited for failed. Running it again at once would repeat
            the failure once per waiting launcher; a later launch() resumes it.
    """
    observed: dict[int, tuple[Any, float]] = {}
    waited_for = 0
    deadline = None if wait is True or wait is False else time.monotonic() + float(wait)
    delay = 0.005
    while True:
        if files.is_finished():
            return None
        latest = files.latest_run()
        takeover: dict[str, Any] | None = None
        previous: str | None = None
        if latest:
            end = files.end(latest)
            if end is not None:
                previous = str(end.get("status"))
                if previous == "finished":
                    return None
                if previous == "failed" and waited_for == latest:
                    raise FailedElsewhere(_failure_of(files, latest, end))
            else:
                claim = files.claim(latest)
                assert claim is not None  # a claim file is complete once it exists
                reason = why_dead(files, latest, claim, observed)
                if reason is None:
                    held = _heartbeats.held(files.directory)
                    if held is not None and held.thread_id == _current_thread_id():
                        raise AlreadyRunningError(
                            f"{describe} is running in this thread (run {latest}): launching "
                            "it from inside its own run would wait for itself forever"
                        )
                    if wait is False or (deadline is not None and time.monotonic() >= deadline):
                        raise AlreadyRunningError(
                            f"{describe} is running elsewhere (run {latest} by {_holder(claim)}); "
                            "launch(wait=True) waits for it to end"
                        )
                    waited_for = latest
                    time.sleep(delay)
                    delay = min(delay * 1.5, 1.0, lease / 20)
                    continue
                previous = "died"
                takeover = {"run": latest, "host": claim.get("host"), "pid": claim.get("pid"), "reason": reason}
        run = latest + 1
        data = {
            "format": RUN_FORMAT,
            "run": run,
            "started": now_iso(),
            "lease": lease,
            "heartbeat": heartbeat,
            "resumes": {"run": latest, "status": previous} if latest else None,
            "takeover": takeover,
            **host_facts(),
            **record,
        }
        if not files.create(claim_file(run), data, durable):
            continue  # another launcher claimed this run first: look again
        claim_obj = Claim(files, run, data, durable)
        _heartbeats.add(claim_obj)
        if takeover is not None:
            files.create(
                end_file(latest),
                {"run": latest, "status": "died", "time": data["started"], "reason": takeover["reason"],
                 "taken_over_by": run},
                durable,
            )
        return claim_obj
