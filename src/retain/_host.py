"""Facts about this host and process that runs record (host, pid and its start time, pid
namespace, Python, retain), whether a process recorded so still runs, and the packages this
process loaded."""

from __future__ import annotations

import os
import platform
import socket
import sys

from ._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import ModuleType
    from typing import Any

__all__ = ["host_facts", "installed", "package_versions", "packages", "process_gone"]

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
    """Distribution name -> version of the installed packages loaded in this process
    (recomputed when modules were imported since)."""
    global _packages
    if _packages[0] != len(sys.modules):
        # Private modules (_yaml, _pytest) come with their public package, which names it.
        names = {name.partition(".")[0] for name in list(sys.modules) if not name.startswith("_")}
        _packages = (len(sys.modules), package_versions(names))
    return _packages[1]


#: Top-level module name -> the distributions that installed it and their versions (empty for
#: the standard library and code installed by none): found once per process, as the code a
#: process runs is the code it imported.
_distributions: dict[str, dict[str, str]] = {}
_by_module: Mapping[str, list[str]] | None = None


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Distribution name -> version of the installed distributions that provide the top-level
    modules `names` (loaded ones); the standard library and code that no distribution
    installed (a script, a project on ``sys.path``) are left out."""
    found: dict[str, str] = {}
    for name in sorted(names):
        known = _distributions.get(name)
        if known is None:
            known = _distributions[name] = _distributions_of(name)
        found.update(known)
    return dict(sorted(found.items()))


def _distributions_of(name: str) -> dict[str, str]:
    module = sys.modules.get(name)
    if name in sys.stdlib_module_names or module is None:
        return {}
    if installed(module):
        beside = _beside(name, module)
        if beside is not None:
            return beside
    # Importing importlib.metadata (email, zipfile, csv) and its parsing cost more than the
    # rest of a first commit: only for what is not found beside the module.
    import importlib.metadata as metadata

    try:
        # Most distributions are named as the module they install: one look-up in sys.path.
        distribution = metadata.distribution(name)
        return {distribution.name: distribution.version}
    except metadata.PackageNotFoundError:
        pass
    if not installed(module):
        return {}
    global _by_module
    if _by_module is None:
        # Reads every distribution's file list (a tenth of a second or more): only for a
        # module installed under another name (yaml: PyYAML, sklearn: scikit-learn).
        _by_module = metadata.packages_distributions()
    versions: dict[str, str] = {}
    for distribution_name in _by_module.get(name, ()):
        try:
            versions[distribution_name] = metadata.version(distribution_name)
        except metadata.PackageNotFoundError:
            pass
    return versions


_listings: dict[str, list[str]] = {}


def _beside(name: str, module: ModuleType) -> dict[str, str] | None:
    """The distribution named as module `name` from the ``.dist-info`` directory next to it
    (where pip puts both), read without importlib.metadata; None when there is none."""
    paths = list(getattr(module, "__path__", None) or ())
    location = os.path.dirname(paths[0] if paths else getattr(module, "__file__", None) or "")
    if not location:
        return None
    listing = _listings.get(location)
    if listing is None:
        try:
            listing = _listings[location] = sorted(os.listdir(location))
        except OSError:
            return None
    wanted = _normal(name)
    for entry in listing:
        if entry.endswith(".dist-info") and _normal(entry[: -len(".dist-info")].partition("-")[0]) == wanted:
            headers = _metadata_headers(os.path.join(location, entry, "METADATA"))
            if "Name" in headers and "Version" in headers:
                return {headers["Name"]: headers["Version"]}
    return None


def _normal(name: str) -> str:
    # Names compare as PEP 503 has it (case, and runs of -_. alike).
    return name.lower().replace("-", "_").replace(".", "_")


def _metadata_headers(path: str) -> dict[str, str]:
    """The headers of a METADATA file (up to the first blank line: the description follows)."""
    headers: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, colon, value = line.partition(":")
                if colon and key in ("Name", "Version"):
                    headers[key] = value.strip()
                    if len(headers) == 2:
                        break
    except OSError:
        pass
    return headers


def installed(module: ModuleType) -> bool:
    """Whether `module` lies where installers put packages (site-packages, dist-packages)
    rather than in the code of a project."""
    path = getattr(module, "__file__", None)
    if not path:
        paths = list(getattr(module, "__path__", None) or ())  # a namespace package
        path = paths[0] if paths else None
    if not isinstance(path, str):
        return False
    parts = path.replace(os.sep, "/").split("/")
    return "site-packages" in parts or "dist-packages" in parts
