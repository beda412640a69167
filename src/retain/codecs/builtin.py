"""Codecs from the standard library and numpy."""

from __future__ import annotations

import io
import json
from typing import Any, BinaryIO

from .._errors import CodecError
from .base import Codec

__all__ = ["JsonCodec", "JsonlCodec", "NpyCodec", "NpzCodec", "PickleCodec", "TextCodec"]


def damaged(path: str, what: str, exc: BaseException) -> CodecError:
    """The error for a file that cannot be read back as `what`: it names the file."""
    return CodecError(
        f"{path} is damaged or is not {what}: {type(exc).__name__}: {exc}. Save it again "
        "(save_file(..., overwrite=True) once committed), or restore it from a backup"
    )


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays are common in results; anything else is a clear error.
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"a value of type {type(value).__qualname__} is not JSON serialisable")


class TextCodec(Codec):
    """A `str`, as UTF-8 text."""

    extensions = ("txt", "md", "log")

    def write(self, handle: BinaryIO, value: Any) -> None:
        if not isinstance(value, str):
            raise CodecError(
                f"text files hold a str, got {type(value).__name__}; convert it with str(...) "
                "or use .json / .p for structured values"
            )
        handle.write(value.encode("utf-8"))

    def read(self, path: str) -> Any:
        try:
            with open(path, encoding="utf-8", newline="") as handle:  # keep "\r\n" as written
                return handle.read()
        except UnicodeDecodeError as exc:
            raise damaged(path, "UTF-8 text", exc) from exc


class JsonCodec(Codec):
    """A JSON value (numpy scalars and arrays become numbers and lists)."""

    extensions = ("json",)

    def write(self, handle: BinaryIO, value: Any) -> None:
        try:
            text = json.dumps(value, ensure_ascii=False, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise CodecError(f"cannot save as JSON: {exc}; use .p to pickle it") from None
        handle.write(text.encode("utf-8"))

    def read(self, path: str) -> Any:
        try:
            with open(path, "rb") as handle:
                return json.load(handle)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
            raise damaged(path, "JSON", exc) from exc


class JsonlCodec(Codec):
    """An iterable of JSON values, one per line; read back as a list."""

    extensions = ("jsonl",)

    def write(self, handle: BinaryIO, value: Any) -> None:
        if isinstance(value, (str, bytes, dict)):
            raise CodecError(
                f"a .jsonl file holds a sequence of JSON values, got {type(value).__name__}; "
                "pass a list of them"
            )
        writer = io.TextIOWrapper(handle, encoding="utf-8", newline="\n", write_through=True)
        try:
            for line in value:
                writer.write(json.dumps(line, ensure_ascii=False, default=_json_default))
                writer.write("\n")
        except (TypeError, ValueError) as exc:
            raise CodecError(f"cannot save as JSON lines: {exc}") from None
        finally:
            writer.detach()

    def read(self, path: str) -> Any:
        try:
            with open(path, encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()]
        except (ValueError, RecursionError) as exc:
            raise damaged(path, "JSON lines", exc) from exc


class PickleCodec(Codec):
    """Any picklable value (only load pickles you trust)."""

    extensions = ("p", "pkl", "pickle")

    def write(self, handle: BinaryIO, value: Any) -> None:
        import pickle

        pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)

    def read(self, path: str) -> Any:
        import pickle

        with open(path, "rb") as handle:
            try:
                return pickle.load(handle)
            except (ImportError, AttributeError):
                raise  # the pickle names code that is gone: not damage, and its message says so
            except Exception as exc:  # damaged bytes make the unpickler raise almost anything
                raise damaged(path, "a pickle", exc) from exc


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        raise CodecError(
            "numpy is needed for .npy and .npz files: pip install 'retain[numpy]'"
        ) from None
    return numpy


class NpyCodec(Codec):
    """A numpy array (no pickled objects)."""

    extensions = ("npy",)

    def write(self, handle: BinaryIO, value: Any) -> None:
        np = _numpy()
        np.save(handle, np.asanyarray(value), allow_pickle=False)

    def read(self, path: str) -> Any:
        np = _numpy()
        try:
            value = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise damaged(path, "a .npy array", exc) from exc
        if not isinstance(value, np.ndarray):  # a .npz archive under a .npy name
            value.close()
            raise CodecError(f"{path} is not a .npy array (it is an .npz archive); load it under a .npz name")
        return value


class NpzCodec(Codec):
    """A mapping of names to numpy arrays; read back as a dict."""

    extensions = ("npz",)

    def write(self, handle: BinaryIO, value: Any) -> None:
        np = _numpy()
        if not hasattr(value, "items"):
            raise CodecError(
                f"a .npz file holds a mapping of names to arrays, got {type(value).__name__}"
            )
        np.savez(handle, **{str(k): np.asanyarray(v) for k, v in value.items()})

    def read(self, path: str) -> Any:
        import zipfile
        import zlib

        np = _numpy()
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, OSError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise damaged(path, "an .npz archive", exc) from exc
        except TypeError as exc:  # a .npy array under an .npz name is no archive
            raise damaged(path, "an .npz archive", exc) from exc


BUILTIN_CODECS: tuple[Codec, ...] = (
    TextCodec(),
    JsonCodec(),
    JsonlCodec(),
    PickleCodec(),
    NpyCodec(),
    NpzCodec(),
)
