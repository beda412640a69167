"""Code provenance recorded at commit: git state, source hash, host. Never part of identity.

Each fact is read once per process and cached: the code a process runs is the code it
imported, so a file edited after import must not be credited to results of this process.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from typing import Any

from ._host import host_facts


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
    return {key: facts[key] for key in ("host", "python", "platform", "retain")}


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
    return facts
