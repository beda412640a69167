"""Facts about this host and process that runs record (host, pid and its start time, pid
namespace, Python, retain), whether a process recorded so still runs, and the packages this
process loaded."""

from __future__ import annotations

import os
import platform
import socket
import sys
import warnings

from ._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["host_facts", "packages", "process_gone"]

_static: dict[str, Any] | None = None
_facts: dict[str, Any] | None = None


def host_facts() -> dict[str, Any]:
    """Facts about this process that every claim records (cached; pid facts renewed after a
    fork, the rest inherited so that a forked child does not compute them again)."""
    global _static, _facts
    if _facts is None or _facts["pid"] != os.getpid():
        if _static is None:
            _static = {
                "host": socket.gethostname(),
                "pidns": _pid_namespace(),
                "python": platform.python_version(),
                "implementation": sys.implementation.name,
                "platform": sys.platform,
                "retain": __version__,
            }
        _facts = {**_static, "pid": os.getpid(), "pid_start": _pid_start(os.getpid())}
    return _facts


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    return text[text.rfind(")") + 2:].split()


def _pid_start(pid: int) -> str | None:
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else None


def process_gone(pid: int, start: str | None) -> bool:
    """Whether process `pid` (started at `start`, in clock ticks since boot) no longer runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, owned by another user
    except OSError:
        return False
    fields = _proc_stat(pid)
    if fields is None:
        return False  # no /proc: alive as far as we can tell
    if fields[0] in ("Z", "X"):
        return True  # a zombie has stopped running; only its parent has not reaped it yet
    return start is not None and len(fields) > 19 and fields[19] != start  # pid reused


_packages: tuple[int, dict[str, str]] = (-1, {})


def packages() -> dict[str, str]:
    """Versions of the third-party top-level packages loaded in this process (recomputed when
    modules were imported since)."""
    global _packages
    if _packages[0] == len(sys.modules):
        return _packages[1]
    found: dict[str, str] = {}
    stdlib = sys.stdlib_module_names
    with warnings.catch_warnings():
        # Some packages deprecate `__version__` with a warning (click, markupsafe).
        warnings.simplefilter("ignore")
        for name, module in list(sys.modules.items()):
            if "." in name or name in stdlib or name.startswith("_"):
                continue
            version = getattr(module, "__version__", None)
            if isinstance(version, str):
                found[name] = version
    _packages = (len(sys.modules), found)
    return found
