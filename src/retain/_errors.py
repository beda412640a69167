"""One rooted exception tree: every error retain raises is a `RetainError`, every warning it
issues a `RetainWarning`.

Each specific error also inherits the built-in exception a caller would naturally catch (in
brackets), so `except ValueError` keeps working for code that does not know about retain::

    RetainError (Exception)
        AlreadyRunningError (RuntimeError)
        ArchiveError (ValueError)
        CodecError (ValueError)
        CollisionError (ValueError)
        ComponentDefinitionError (TypeError)
        ConfigError (ValueError)
        ExecutionError (RuntimeError)
        FileMissingError (FileNotFoundError)
        IdentityError (TypeError)
        ImmutableError (RuntimeError)
        InUseError (RuntimeError)
        IndexDatabaseError (RuntimeError)
        InterfaceNotFoundError (LookupError)
        LaunchError (RuntimeError)
        MetricMissingError (LookupError)
        ModuleResolutionError (ImportError)
            NotImportableError
        RecordError (ValueError)
        StorageError (OSError)
        TagError (ValueError)
        UnsafePathError (ValueError)
        UsageError (ValueError)
        VersionError (ValueError)

    RetainWarning (UserWarning)
        IndexWarning
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "AlreadyRunningError",
    "ArchiveError",
    "CodecError",
    "CollisionError",
    "ComponentDefinitionError",
    "ConfigError",
    "ExecutionError",
    "FileMissingError",
    "IdentityError",
    "ImmutableError",
    "InUseError",
    "IndexDatabaseError",
    "IndexWarning",
    "InterfaceNotFoundError",
    "LaunchError",
    "MetricMissingError",
    "ModuleResolutionError",
    "NotImportableError",
    "RecordError",
    "RetainError",
    "RetainWarning",
    "StorageError",
    "TagError",
    "UnsafePathError",
    "UsageError",
    "VersionError",
]


class RetainError(Exception):
    """Root of every error raised by retain."""


class ConfigError(RetainError, ValueError):
    """A configuration update is invalid: an unknown key, a wrong type, a bad shape."""


class VersionError(RetainError, ValueError):
    """A version is malformed, or names a version method the class does not have."""


class IdentityError(RetainError, TypeError):
    """A configuration value cannot be part of an identity (it has no canonical JSON form)."""


class ModuleResolutionError(RetainError, ImportError):
    """A module reference does not lead to exactly one Interface class."""


class RecordError(RetainError, ValueError):
    """A stored record is missing, corrupted, or not a retain record."""


class InUseError(RetainError, RuntimeError):
    """An interface cannot be removed: other results use it as an input, or it is running."""


class InterfaceNotFoundError(RetainError, LookupError):
    """No committed interface matches an id or prefix, or a prefix matches several."""


class MetricMissingError(RetainError, LookupError):
    """A result has no value for the metric asked of it (a summary key it never saved, a
    metric it never logged): the message lists those it has."""


class CollisionError(RetainError, ValueError):
    """Results moved into a storage disagree with what it holds: an id it has with another
    record, or identity baselines of a class that differ (the same id would mean two
    configurations). Nothing was moved."""


class ArchiveError(RetainError, ValueError):
    """A file given to `retain import` is not a retain archive, or is damaged."""


class UnsafePathError(RetainError, ValueError):
    """A file name would leave the interface's directory or collide with retain's own files."""


class TagError(RetainError, ValueError):
    """A tag name is malformed (see `retain.query.TAG_RULE`)."""


class UsageError(RetainError, ValueError):
    """The words on the command line (or a ``--where`` expression, or an age or size given
    to `gc`) do not form a command."""


class FileMissingError(RetainError, FileNotFoundError):
    """`load_file` was asked for a file that does not exist and no default was given."""


class ImmutableError(RetainError, RuntimeError):
    """An operation would change a committed interface: its identity, or one of its files
    without ``overwrite=True``."""


class IndexDatabaseError(RetainError, RuntimeError):
    """The index cannot be used: its database is corrupt, from a newer schema, busy beyond its
    timeout, or on a file system where it would be unsafe. The index is a cache: deleting it
    and running `retain.index.rebuild()` loses nothing."""

    #: The database is damaged (not merely busy or unreachable): a rebuild makes it anew.
    corrupt: bool = False


class RetainWarning(UserWarning):
    """Root of every warning issued by retain (``warnings.simplefilter("ignore", RetainWarning)``
    silences them all)."""


class IndexWarning(RetainWarning):
    """The index could not be updated (a commit still succeeded); the next query repairs it."""


class StorageError(RetainError, OSError):
    """Storage could not be read or written (permissions, space, unreachable)."""


class CodecError(RetainError, ValueError):
    """No codec is registered for a file's extension, or a value does not fit its codec."""


class ComponentDefinitionError(RetainError, TypeError):
    """A Component class cannot run as defined (for example, it has no ``__call__``)."""


class NotImportableError(ModuleResolutionError):
    """A component must run in another process, which reloads its class by import, and the
    class cannot be imported there (defined in ``__main__`` of a session, or in a function)."""


class AlreadyRunningError(RetainError, RuntimeError):
    """A component is running elsewhere (its claim is alive) and the launcher was told not to
    wait, or waited longer than it was allowed to."""


class ExecutionError(RetainError, RuntimeError):
    """An execution backend could not do its part: a Dask scheduler that cannot be reached, a
    batch system that refuses a submission. The message names what was tried; components that
    were not handed over did not run."""


class LaunchError(RetainError, RuntimeError):
    """Components failed in a launch. `failures` holds one `Outcome` per failed component
    (with ``.component`` and ``.error``: type, message, traceback); the others ran or were
    cached, as the message counts."""

    def __init__(self, message: str, failures: list[Any] | None = None) -> None:
        super().__init__(message)
        self.failures: list[Any] = list(failures or [])
