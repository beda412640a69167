"""The codec registry: `save_file`/`load_file` pick a codec by the file's extension."""

from __future__ import annotations

from .._errors import CodecError
from .base import Codec

__all__ = ["Codec", "codec_for", "register_codec"]

_registry: dict[str, Codec] = {}


def _ensure_builtins() -> None:
    if not _registry:
        from .builtin import BUILTIN_CODECS  # json and io load at the first file, not at import

        for codec in BUILTIN_CODECS:
            for extension in codec.extensions:
                _registry.setdefault(extension, codec)


def register_codec(codec: Codec, *, replace: bool = False) -> None:
    """Use `codec` for files with its extensions.

    Raises:
        CodecError: an extension already has a codec and `replace` is false.
    """
    if not isinstance(codec, Codec):
        raise CodecError(f"expected a Codec instance, got {codec!r}")
    if not codec.extensions:
        raise CodecError(f"{type(codec).__name__}.extensions is empty; list the extensions it serves")
    _ensure_builtins()
    for extension in codec.extensions:
        extension = extension.lower().lstrip(".")
        current = _registry.get(extension)
        if current is not None and current is not codec and not replace:
            raise CodecError(
                f".{extension} files already use {type(current).__name__}; pass replace=True "
                "to use yours instead"
            )
    for extension in codec.extensions:
        _registry[extension.lower().lstrip(".")] = codec


def codec_for(name: str) -> Codec:
    """The codec for a file name, by its longest registered extension."""
    _ensure_builtins()
    base = name.rsplit("/", 1)[-1].lower()
    parts = base.split(".")
    for i in range(1, len(parts)):
        codec = _registry.get(".".join(parts[i:]))
        if codec is not None:
            return codec
    known = ", ".join(f".{e}" for e in sorted(_registry))
    raise CodecError(
        f"no codec for {name!r}; known extensions: {known}. Register one with "
        "retain.register_codec, or write the file yourself under local_directory()"
    )
