"""retain: configurable research code whose results are found again by their configuration.

Retrieval is instantiation: ``get(MnistData, {"batch_size": 8})`` returns the committed
interface with that configuration if there is one, else a new one.

Importing retain loads only the standard library; pydantic, numpy and optional backends load
when first used.
"""

from __future__ import annotations

from ._errors import (
    ArchiveError,
    CodecError,
    CollisionError,
    ConfigError,
    FileMissingError,
    IdentityError,
    ImmutableError,
    InterfaceNotFoundError,
    ModuleResolutionError,
    RecordError,
    RetainError,
    RetainWarning,
    StorageError,
    UnsafePathError,
    VersionError,
)
from ._get import get
from ._sentinel import NOT_GIVEN
from ._settings import settings, storage
from ._version import __version__
from .codecs import Codec, register_codec
from .config import ConfigView
from .element import Element
from .interface import Interface
from .storage import LocalStorage, Storage

# The index: get.all, collections, filters (sqlite3 loads when the index is first used).
from . import index
from ._errors import IndexDatabaseError, IndexWarning
from .collection import Collection
from .query import between, ge, gt, has, le, lt, one_of

# Components and executions (light: the backends and their threads load when first used).
from ._errors import (
    AlreadyRunningError,
    ComponentDefinitionError,
    ExecutionError,
    LaunchError,
    NotImportableError,
)
from ._errors import InUseError, TagError
from ._lifecycle import Removed  # importing it installs Interface.delete
from .component import Component
from .execution import Execution

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._api import StatusReport, launch, status
    from .runs.status import ExecutionStatus
    from ._diff import InterfaceDiff
    from ._grid import Grid, grid
    from ._health import DiskUsage, VerifyReport, du, verify
    from ._gc import GcReport, gc
    from ._stale import stale
    from ._cached import CachedFunction, cached
    from ._transfer import Moved, copy, export, ingest
del TYPE_CHECKING

#: The verbs over many results load when first named: `import retain` stays cheap.
_LAZY = {
    "InterfaceDiff": "_diff", "Grid": "_grid", "grid": "_grid", "StatusReport": "_api",
    "launch": "_api", "status": "_api", "stale": "_stale", "ExecutionStatus": "runs.status",
    "cached": "_cached", "CachedFunction": "_cached",
    "DiskUsage": "_health", "VerifyReport": "_health", "du": "_health", "verify": "_health",
    "Moved": "_transfer", "copy": "_transfer", "export": "_transfer", "ingest": "_transfer",
    "GcReport": "_gc", "gc": "_gc",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'retain' has no attribute {name!r}")
    from importlib import import_module  # (see _LAZY; importlib is loaded already)

    value = getattr(import_module(f"retain.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__all__ = [
    "AlreadyRunningError",
    "ArchiveError",
    "CachedFunction",
    "Codec",
    "CodecError",
    "Collection",
    "CollisionError",
    "Component",
    "ComponentDefinitionError",
    "ConfigError",
    "ConfigView",
    "DiskUsage",
    "Element",
    "Execution",
    "ExecutionError",
    "ExecutionStatus",
    "FileMissingError",
    "GcReport",
    "Grid",
    "IdentityError",
    "ImmutableError",
    "InUseError",
    "IndexDatabaseError",
    "IndexWarning",
    "Interface",
    "InterfaceDiff",
    "InterfaceNotFoundError",
    "LaunchError",
    "LocalStorage",
    "ModuleResolutionError",
    "Moved",
    "NOT_GIVEN",
    "NotImportableError",
    "RecordError",
    "Removed",
    "RetainError",
    "RetainWarning",
    "StatusReport",
    "Storage",
    "StorageError",
    "TagError",
    "UnsafePathError",
    "VerifyReport",
    "VersionError",
    "__version__",
    "between",
    "cached",
    "copy",
    "du",
    "export",
    "gc",
    "ge",
    "get",
    "grid",
    "gt",
    "has",
    "ingest",
    "launch",
    "le",
    "lt",
    "one_of",
    "register_codec",
    "settings",
    "stale",
    "status",
    "storage",
    "verify",
]
