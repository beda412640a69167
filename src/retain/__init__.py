"""retain: configurable research code whose results are found again by their configuration.

Retrieval is instantiation: ``get(MnistData, {"batch_size": 8})`` returns the committed
interface with that configuration if there is one, else a new one.

Importing retain loads only the standard library; pydantic, numpy and optional backends load
when first used.
"""

from __future__ import annotations

from ._errors import (
    ChangedDefaultsError,
    ChangedDefaultsWarning,
    CodecError,
    ConfigError,
    FileMissingError,
    IdentityError,
    ImmutableError,
    InterfaceNotFoundError,
    ModuleResolutionError,
    RecordError,
    RetainError,
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

__all__ = [
    "ChangedDefaultsError",
    "ChangedDefaultsWarning",
    "Codec",
    "CodecError",
    "ConfigError",
    "ConfigView",
    "Element",
    "FileMissingError",
    "IdentityError",
    "ImmutableError",
    "Interface",
    "InterfaceNotFoundError",
    "LocalStorage",
    "ModuleResolutionError",
    "NOT_GIVEN",
    "RecordError",
    "RetainError",
    "Storage",
    "StorageError",
    "UnsafePathError",
    "VersionError",
    "__version__",
    "get",
    "register_codec",
    "settings",
    "storage",
]
