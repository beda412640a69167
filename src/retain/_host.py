"""Facts about this host and process that runs record (host, pid and its start time, pid
namespace, Python, retain), whether a process recorded so still runs, and the versions of
installed packages: those this process loaded (claims) or a module imported (records), from
one source, `package_versions`."""

from __future__ import annotations

import os
import platform
import socket
import sys

from ._version import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
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


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Distribution name -> version of the installed distributions that provide the top-level
    modules `names` (loaded ones); the standard library and code that no distribution
    installed (a script, a project on ``sys.path``) are left out.

    Read from the installers' metadata next to each module (``NAME-VERSION.dist-info``,
    ``.egg-info``), not through `importlib.metadata`: importing it costs more than a first
    commit, and its map of modules to distributions reads every file list (a second and more
    in a process that loaded dask and pandas). Here a name is a directory listing (once) and
    a few header lines; only a module installed under another name (yaml: PyYAML) reads the
    file lists of its directory, once.
    """
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
    paths = list(getattr(module, "__path__", None) or ())
    path = paths[0] if paths else getattr(module, "__file__", None)
    if not isinstance(path, str):
        return {}
    if installed(module):
        site = _site(os.path.dirname(path))
        if site is None:
            return {}
        entry = site.by_name.get(_normal(name))
        entries = [entry] if entry else site.providers().get(name, [])
    else:
        entries = _editable(name, path)
    found: dict[str, str] = {}
    for entry in entries:
        headers = _metadata_headers(entry)
        if "Name" in headers and "Version" in headers:
            found[headers["Name"]] = headers["Version"]
    return found


def _editable(name: str, path: str) -> list[str]:
    """The metadata of the editable install (``pip install -e``) that module `name` at `path`
    comes from: named as the module, in a site directory on ``sys.path``, and pointing to a
    directory that holds `path` (PEP 610's ``direct_url.json``); else none: a module of the
    project that only shares a name with an installed distribution is not it."""
    for directory in sys.path:
        site = _site(directory) if "-packages" in os.path.basename(directory) else None
        entry = site.by_name.get(_normal(name)) if site else None
        if entry is None or not entry.endswith(".dist-info"):
            continue
        text = "".join(_read_lines(os.path.join(entry, "direct_url.json")))
        # json loads at the first look-up of a module that is not in site-packages, rarely.
        import json

        try:
            url = json.loads(text) if text else {}
        except ValueError:
            continue
        source = url.get("url", "") if isinstance(url, dict) else ""
        editable = isinstance(url, dict) and (url.get("dir_info") or {}).get("editable")
        if editable and source.startswith("file://"):
            root = os.path.realpath(source[len("file://"):])
            if os.path.realpath(path).startswith(root + os.sep):
                return [entry]
    return []


class _Site:
    """The installers' metadata in one directory (site-packages)."""

    __slots__ = ("location", "by_name", "_providers")

    def __init__(self, location: str, listing: list[str]) -> None:
        self.location = location
        #: Normalised distribution name -> its metadata directory (or egg-info file).
        self.by_name: dict[str, str] = {}
        for entry in listing:
            if entry.endswith((".dist-info", ".egg-info")):
                self.by_name.setdefault(_normal(entry.partition("-")[0].removesuffix(".egg-info")), os.path.join(location, entry))
        self._providers: dict[str, list[str]] | None = None

    def providers(self) -> dict[str, list[str]]:
        """Top-level module -> the metadata of the distributions that installed it, from
        their ``top_level.txt`` or else their ``RECORD`` (read once, on the first module
        installed under another name)."""
        if self._providers is None:
            self._providers = {}
            for entry in self.by_name.values():
                for module in _top_levels(entry):
                    self._providers.setdefault(module, []).append(entry)
        return self._providers


_sites: dict[str, _Site | None] = {}


def _site(location: str) -> _Site | None:
    if location not in _sites:
        try:
            _sites[location] = _Site(location, sorted(os.listdir(location)))
        except OSError:
            _sites[location] = None
    return _sites[location]


def _normal(name: str) -> str:
    # Names compare as PEP 503 has it (case, and runs of -_. alike).
    return name.lower().replace("-", "_").replace(".", "_")


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines()
    except OSError:
        return []


def _top_levels(entry: str) -> set[str]:
    """The top-level modules a distribution installed (its metadata at `entry`)."""
    listed = _read_lines(os.path.join(entry, "top_level.txt"))
    if listed:
        return {line.strip() for line in listed if line.strip()}
    found: set[str] = set()
    for line in _read_lines(os.path.join(entry, "RECORD")):
        first = line.partition(",")[0].partition("/")
        part = first[0]
        if not first[1]:  # a file at the top: foo.py, foo.cpython-311-x86_64-linux-gnu.so
            if not part.endswith((".py", ".so", ".pyd")):
                continue
        elif part.endswith((".dist-info", ".data")) or part in ("..", "__pycache__"):
            continue
        found.add(part.partition(".")[0])
    return found


def _metadata_headers(entry: str) -> dict[str, str]:
    """Name and Version from the headers of a distribution's METADATA (or PKG-INFO), up to
    the first blank line (the description follows)."""
    if entry.endswith(".dist-info"):
        path = os.path.join(entry, "METADATA")
    else:
        path = entry if os.path.isfile(entry) else os.path.join(entry, "PKG-INFO")
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
