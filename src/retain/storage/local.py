"""Storage in a local (or mounted) directory."""

from __future__ import annotations

import os

from .._errors import StorageError
from .._fs import atomic_write, fsync_directory, makedirs
from ..identity import ID_LENGTH, is_id
from .base import Storage
from .layout import RECORD_FILE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["LocalStorage"]


class LocalStorage(Storage):
    """Interfaces in `<root>/<id>/`, the record in `<root>/<id>/interface.json`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.path.abspath(os.fspath(root))

    @property
    def url(self) -> str:
        return self.root

    def local_directory(self, id: str) -> str:
        return os.path.join(self.root, id)

    def record_path(self, id: str) -> str:
        return os.path.join(self.root, id, RECORD_FILE)

    def read_record(self, id: str) -> bytes | None:
        try:
            with open(os.path.join(self.root, id, RECORD_FILE), "rb") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageError(
                exc.errno or 0, f"could not read the record of {id} in {self.root}: {exc.strerror}"
            ) from exc

    def has_record(self, id: str) -> bool:
        return os.path.isfile(os.path.join(self.root, id, RECORD_FILE))

    def publish_record(self, id: str, data: bytes, *, durable: bool = False) -> bool:
        directory = self.local_directory(id)
        makedirs(directory)
        if durable:
            # Whoever created the directory (save_file before commit, perhaps not durably),
            # its entry in the root must be on disk before the record that makes it visible.
            fsync_directory(self.root)
        return atomic_write(
            os.path.join(directory, RECORD_FILE),
            lambda handle: handle.write(data),
            durable=durable,
            exclusive=True,
        )

    def iter_ids(self, prefix: str = "") -> Iterator[str]:
        try:
            entries = os.scandir(self.root)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StorageError(exc.errno or 0, f"could not list {self.root}: {exc.strerror}") from exc
        with entries:
            for entry in entries:
                name = entry.name
                if (
                    len(name) == ID_LENGTH
                    and name.startswith(prefix)
                    and is_id(name)
                    and os.path.isfile(os.path.join(entry.path, RECORD_FILE))
                ):
                    yield name
