"""Versions: how a configuration is changed from its defaults.

A version is a dict update (dotted keys allowed), a string ``"~name(args)"`` that calls the
element's ``version_name(args)`` method, or a list of versions applied left to right. The
arguments of a call are Python literals, parsed, never evaluated.
"""

from __future__ import annotations

# `collections.abc` re-exports these from `_collections_abc`, which the interpreter has
# already loaded; importing the public name would load all of `collections` (~2 ms).
from _collections_abc import Mapping

from ._errors import VersionError
from .config import copy_tree

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Union

    Version = Union[None, str, Mapping[str, Any], Sequence["Version"]]

__all__ = ["Version", "VersionCall", "flatten_versions", "parse_version_call"]

class VersionCall:
    """A parsed ``"~name(args)"`` version."""

    __slots__ = ("name", "args", "kwargs")

    def __init__(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.name = name
        self.args = args
        self.kwargs = kwargs

    @property
    def method_name(self) -> str:
        return f"version_{self.name}"


def parse_version_call(text: str) -> VersionCall:
    """Parse ``"~name"``, ``"~name(3)"`` or ``"~name(factor=0.5)"``.

    Raises:
        VersionError: the string is not of that form, or an argument is not a literal.
    """
    name, args, kwargs = _parse(text)
    return VersionCall(name, copy_tree(args), copy_tree(dict(kwargs)))


_parsed: dict[str, tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]] = {}


def _parse(text: str) -> tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]:
    found = _parsed.get(text)
    if found is None:
        found = _parse_uncached(text)
        if len(_parsed) < 4096:
            _parsed[text] = found
    return found


def _parse_uncached(text: str) -> tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]:
    import ast  # with the first version call: it loads functools, which `import retain` avoids

    body = text.strip()
    if not body.startswith("~"):
        raise VersionError(
            f"malformed version {text!r}: a version string calls a version method and starts "
            "with '~', e.g. '~large' or '~large(3)'; for a config change pass a dict"
        )
    body = body[1:].strip()
    try:
        node = ast.parse(body, mode="eval").body
    except SyntaxError:
        raise VersionError(
            f"malformed version {text!r}: expected '~name' or '~name(arguments)' with Python "
            "literal arguments, e.g. '~large(3)' or '~scale(factor=0.5)'"
        ) from None
    if isinstance(node, ast.Name):
        return node.id, (), ()
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        raise VersionError(
            f"malformed version {text!r}: expected '~name' or '~name(arguments)', e.g. "
            "'~large(3)'"
        )
    args = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            raise VersionError(f"malformed version {text!r}: *arguments are not supported")
        args.append(_literal(arg, text))
    kwargs = []
    for keyword in node.keywords:
        if keyword.arg is None:
            raise VersionError(f"malformed version {text!r}: **arguments are not supported")
        kwargs.append((keyword.arg, _literal(keyword.value, text)))
    return node.func.id, tuple(args), tuple(kwargs)


def _literal(node: Any, text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise VersionError(
            f"malformed version {text!r}: argument {ast.unparse(node)!r} is not a Python "
            "literal (numbers, strings, booleans, None, lists, tuples, dicts); arguments are "
            "parsed, never evaluated"
        ) from None


def flatten_versions(version: Version) -> list[str | dict[str, Any]]:
    """The version as a flat list of dict updates (copied) and version strings."""
    out: list[str | dict[str, Any]] = []
    _flatten(version, out, _MAX_LIST_DEPTH)
    return out


#: How deep lists of versions may nest in one another (a list holding itself goes on forever).
_MAX_LIST_DEPTH = 50


def _flatten(version: Any, out: list[str | dict[str, Any]], levels: int) -> None:
    if version is None:
        return
    if isinstance(version, str):
        out.append(version)
    elif type(version) is dict or (
        isinstance(version, Mapping) and not hasattr(version, "__retain_reference__")
    ):
        out.append(copy_tree(version))  # a dict (also from any other Mapping)
    elif isinstance(version, (list, tuple)):
        if not levels:
            raise VersionError(
                f"lists of versions nest deeper than {_MAX_LIST_DEPTH} levels; a list that "
                "contains itself? Pass a flat list of versions"
            )
        for item in version:
            _flatten(item, out, levels - 1)
    else:
        raise VersionError(
            f"a version must be a dict, a '~name(...)' string, or a list of those; got "
            f"{type(version).__name__} {version!r}"
        )
