"""Provenance recorded at commit: the code (git state, source hash), the host, and the
environment (Python, platform, the versions of the packages the module imports). Never part
of identity.

Each fact is read once per process and cached: the code a process runs is the code it
imported, so a file edited after import must not be credited to results of this process.
"""

from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache
from types import FunctionType, ModuleType
from typing import Any

from ._host import host_facts, installed, package_versions


@lru_cache(maxsize=None)
def _file_sha256(path: str) -> str | None:
    import hashlib

    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except OSError:
        return None


@lru_cache(maxsize=None)
def _git_root(directory: str) -> str | None:
    current = directory
    while True:
        if os.path.exists(os.path.join(current, ".git")):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


@lru_cache(maxsize=None)
def _git_state(root: str) -> dict[str, Any] | None:
    import subprocess

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", root, *args],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "root": root}


@lru_cache(maxsize=None)
def _host() -> dict[str, Any]:
    facts = host_facts()
    found = {key: facts[key] for key in ("host", "python", "implementation", "platform", "retain")}
    found["machine"] = platform.machine() or None
    library, version = platform.libc_ver()
    found["libc"] = f"{library} {version}" if library else None
    return found


def module_file(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    return os.path.abspath(path) if path else None


@lru_cache(maxsize=None)
def provenance(module_name: str) -> dict[str, Any]:
    """What is known of the code of `module_name` and of this machine."""
    path = module_file(module_name)
    facts: dict[str, Any] = dict(_host())
    facts["source_file"] = path
    facts["source_sha256"] = _file_sha256(path) if path else None
    root = _git_root(os.path.dirname(path)) if path else None
    facts["git"] = _git_state(root) if root else None
    facts["packages"] = package_versions(imported_packages(module_name))
    return facts


def imported_packages(module_name: str) -> set[str]:
    """The top-level names of the packages that module `module_name` imported: the modules,
    classes and functions in its namespace, and those of the project's own modules it
    imported in turn (a helper module that imports torch). The standard library and retain
    itself (the record names its version already) are left out."""
    found: set[str] = set()
    seen: set[str] = set()
    pending = [module_name]
    while pending:
        name = pending.pop()
        module = sys.modules.get(name)
        if name in seen or module is None:
            continue
        seen.add(name)
        for value in list(vars(module).values()):
            if isinstance(value, ModuleType):
                source = getattr(value, "__name__", None)
            elif isinstance(value, (type, FunctionType)):
                source = getattr(value, "__module__", None)  # may be set to anything
            else:
                continue  # instances: their classes say more, where they are imported
            if not isinstance(source, str):
                continue
            top = source.partition(".")[0]
            if top == "retain" or top in sys.stdlib_module_names or top == "builtins":
                continue
            found.add(top)  # the project's own code may be an editable install: looked up too
            if _own_code(source):
                pending.append(source)
    return found


def _own_code(name: str) -> bool:
    """Whether module `name` is code of the project (followed) rather than an installed package."""
    module = sys.modules.get(name)
    return module is not None and getattr(module, "__file__", None) is not None and not installed(module)
