"""The codec contract: how a value becomes a file and back, chosen by extension."""

from __future__ import annotations

from abc import ABC, abstractmethod

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO, ClassVar

__all__ = ["Codec"]


class Codec(ABC):
    """Writes values to, and reads them from, files with given extensions.

    Subclass it, list `extensions` (without the dot, lower case; ``"tar.gz"`` works), and
    register an instance with `retain.register_codec`. `write` receives a file opened on a
    temporary name; retain renames it into place only when `write` returns, so a failed or
    interrupted write never leaves a partial file.
    """

    extensions: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def write(self, handle: BinaryIO, value: Any) -> None:
        """Write `value` to the open binary file `handle`."""

    @abstractmethod
    def read(self, path: str) -> Any:
        """Read the value stored at `path`; raise `CodecError` naming `path` when its bytes
        are not what this codec writes (a damaged file)."""
