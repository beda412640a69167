"""The storage contract: a handful of primitives every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Storage"]


class Storage(ABC):
    """Where committed interfaces live: one directory of files and one record per id.

    A backend implements the primitives; everything else in retain is built on them. The
    record is the commit: `publish_record` must make it visible atomically and only once.
    """

    #: Files of an interface can be read and written through a local path.
    supports_local_files: bool = True

    @property
    @abstractmethod
    def url(self) -> str:
        """A string that names this storage (a path or URL), accepted by `make_storage`."""

    @abstractmethod
    def local_directory(self, id: str) -> str:
        """The local path of the directory that holds the files of `id` (may not exist)."""

    @abstractmethod
    def read_record(self, id: str) -> bytes | None:
        """The record bytes of `id`, or None when `id` is not committed."""

    @abstractmethod
    def publish_record(self, id: str, data: bytes, *, durable: bool = False) -> bool:
        """Make the record of `id` visible, atomically; False if it already was (first wins)."""

    @abstractmethod
    def iter_ids(self, prefix: str = "") -> Iterator[str]:
        """The committed ids that start with `prefix`, in no particular order."""

    def has_record(self, id: str) -> bool:
        """Whether `id` is committed."""
        return self.read_record(id) is not None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Storage):
            return type(self) is type(other) and self.url == other.url
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self), self.url))
