"""`cached`: a function whose calls are results, computed once and found again.

Each call is an identity like any other: a `Component` subclass made for the function (named
``<function qualname>.component`` in the function's module, so other processes and
`retain stale` find it again) whose config holds the function (``module:qualname``) and its
bound arguments, defaults applied. JSON values enter as they are, interfaces by reference (they
are inputs), numpy arrays and pandas objects by a hash of their content. The call launches the
component (exactly once across processes); its run calls the function and saves the result;
a hit loads that file.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar

from ._errors import ConfigError, ExecutionError, FileMissingError
from ._get import get
from .codecs import codec_for
from .component import Component
from .interface import Interface
from .modules import main_module_name
from .runs import batch
from .storage.layout import FINISHED_FILE

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["CachedFunction", "cached", "argument_identity"]

#: The result's file, by the codec its type takes; a hit looks for them in this order.
RESULT_FILES = ("result.json", "result.npy", "result.p")

_MISS = object()

_ACCEPTED = (
    "JSON values (None, bool, int, float, str, lists/tuples and dicts with str keys of these), "
    "retain interfaces, numpy arrays, and pandas Series/DataFrame/Index"
)


def cached(function: Callable[P, R]) -> CachedFunction[P, R]:
    """Decorate `function` so that each distinct call is computed once and stored.

    ``fit(x, ridge=1.0)`` returns the stored result of that call if there is one (in any
    process sharing the storage), else calls `fit`, stores its return value (a dict or list as
    JSON, a numpy array as ``.npy``, anything else pickled) and returns it as stored (so a
    first call and a later one return equal values). Two processes
    making the same call at once compute it once. ``fit.get(x, ridge=1.0)`` is the interface
    behind the call (committed or not): its files, record, provenance, ``delete()``.

    Raises:
        ConfigError: (when called) an argument is of a kind that cannot be identified.
    """
    return CachedFunction(function)


class CachedFunction(Generic[P, R]):
    """A function decorated with `retain.cached`; call it as the function."""

    def __init__(self, function: Callable[P, R]) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.signature = inspect.signature(function)
        module = getattr(function, "__module__", None) or "__main__"
        # The name other processes import it by (a script's, not `__main__`), as classes do.
        named = main_module_name() if module in ("__main__", "__mp_main__") else module
        qualname = getattr(function, "__qualname__", None) or getattr(function, "__name__", "function")
        self.reference = f"{named}:{qualname}"
        #: The Component subclass whose instances are the calls.
        self.component: type[CachedCall] = type(
            f"{function.__name__}.component",
            (CachedCall,),
            {
                "__module__": module,
                "__qualname__": f"{qualname}.component",
                "__doc__": f"The calls of {self.reference} (retain.cached).",
                "Config": {"function": self.reference, "arguments": {}},
                "_retain_function": staticmethod(function),
            },
        )

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], inspect.BoundArguments]:
        """The call's identifying arguments (defaults applied), and the arguments to call with."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.reference}(): {exc}") from None
        bound.apply_defaults()
        arguments = {name: argument_identity(value, name, self.reference) for name, value in bound.arguments.items()}
        return {"arguments": arguments}, bound

    def _call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> CachedCall:
        version, bound = self._bind(args, kwargs)
        call = self.component(version)
        call._retain_arguments = (bound.args, bound.kwargs)
        return call

    def get(self, *args: P.args, **kwargs: P.kwargs) -> CachedCall:
        """The interface of this call: committed (its result stored) or not; never computes."""
        version, bound = self._bind(args, kwargs)
        found = get(self.component, version)
        found._retain_arguments = (bound.args, bound.kwargs)
        return found

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        call = self._call(args, kwargs)
        found = call._retain_local_hit()
        if found is not _MISS:
            return found  # type: ignore[no-any-return]
        if not call.cached():
            # Now and here even inside ``with execution:``: the arguments live in this
            # process, and the caller waits for the value.
            token = batch.set(None)
            try:
                call.launch()
            finally:
                batch.reset(token)
        return call.result()  # type: ignore[no-any-return]

    def __reduce__(self) -> str:
        # By reference, as functions are (its module's attribute): passed to another process,
        # it is the same decorated function there, with the same component class.
        return str(getattr(self.function, "__qualname__", self.function.__name__))

    def __repr__(self) -> str:
        return f"<retain.cached {self.reference}>"


class CachedCall(Component):
    """One call of a cached function (the base of each function's component class)."""

    _retain_function: ClassVar[Callable[..., Any]]
    _retain_arguments: tuple[tuple[Any, ...], dict[str, Any]] | None = None

    def __call__(self) -> None:
        if self._retain_arguments is None:
            raise ExecutionError(
                f"{self!r} is a call of the cached function {self.config.function}; its arguments "
                "live only in the process that made the call: call the function there (outside "
                "an execution block) rather than launching it elsewhere"
            )
        args, kwargs = self._retain_arguments
        value = type(self)._retain_function(*args, **kwargs)
        self.save_file(result_name(value), value)

    def _retain_local_hit(self) -> Any:
        """The result of a finished call in local storage, read directly, else `_MISS`: the
        hit path. The finished marker is written after the commit and the result, so it
        stands for both; the names are this module's own (no user path to check)."""
        if self.storage.is_remote:
            return _MISS
        directory = self.local_directory()
        if not os.path.exists(os.path.join(directory, FINISHED_FILE)):
            return _MISS
        for name in RESULT_FILES:
            path = os.path.join(directory, name)
            if os.path.isfile(path) and not os.path.islink(path):
                return codec_for(name).read(path)
        return _MISS

    def result(self) -> Any:
        """The stored return value of this call.

        Raises:
            FileMissingError: it has no result (not computed yet, or removed).
        """
        storage = self.storage
        if not storage.is_remote:
            directory = self.local_directory()
            for name in RESULT_FILES:
                if os.path.exists(os.path.join(directory, name)):
                    return self.load_file(name)
        else:
            names = set(self.files())
            for name in RESULT_FILES:
                if name in names:
                    return self.load_file(name)
        raise FileMissingError(f"{self!r} has no stored result; call the function to compute it")


def result_name(value: Any) -> str:
    """The file a return value is stored in: a dict or list that JSON keeps as it is in
    ``result.json``, a numpy array in ``result.npy``, anything else pickled."""
    if isinstance(value, (dict, list)):
        import json  # loaded on a miss only: `import retain` stays cheap

        try:
            if json.loads(json.dumps(value, allow_nan=True)) == value:
                return "result.json"
        except (TypeError, ValueError):
            pass
    elif type(value).__module__ == "numpy" and type(value).__name__ == "ndarray" and value.dtype.kind != "O":
        return "result.npy"
    return "result.p"


def argument_identity(value: Any, name: str, function: str = "the function") -> Any:
    """What argument `name` contributes to a call's identity: JSON values as they are (tuples
    as lists), interfaces as themselves (references), numpy arrays and pandas objects as a
    hash of their content.

    Raises:
        ConfigError: `value` (or a value inside it) is of another kind.
    """
    if value is None or isinstance(value, (bool, int, float, str, Interface)):
        return value
    if isinstance(value, (list, tuple)):
        return [argument_identity(item, name, function) for item in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(
                    f"argument {name!r} of {function} is a dict with a key {key!r} of type "
                    f"{type(key).__name__}; its keys must be strings. Accepted: {_ACCEPTED}"
                )
            out[key] = argument_identity(item, name, function)
        return out
    kind = type(value)
    top = kind.__module__.partition(".")[0]
    if top == "numpy" and kind.__name__ == "ndarray":
        return {"__ndarray__": array_hash(value)}
    if top == "numpy" and hasattr(value, "item") and getattr(value, "shape", None) == ():
        return argument_identity(value.item(), name, function)  # a numpy scalar: its value
    if top == "pandas" and kind.__name__ in ("Series", "DataFrame", "Index"):
        return {f"__{kind.__name__.lower()}__": pandas_hash(value)}
    raise ConfigError(
        f"argument {name!r} of {function} is a {kind.__module__}.{kind.__qualname__}, which a "
        f"cached call cannot identify. Accepted: {_ACCEPTED}"
    )


def array_hash(array: Any) -> str:
    """A hash of a numpy array's dtype, shape and bytes (blake2b, 128 bits)."""
    import hashlib

    if array.dtype.hasobject:
        raise ConfigError(
            f"a numpy array of dtype {array.dtype} (Python objects) has no content hash; "
            "convert it to a numeric or string dtype"
        )
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(array if array.flags.c_contiguous else array.copy(order="C")).cast("B"))
    return digest.hexdigest()


def pandas_hash(value: Any) -> str:
    """A hash of a pandas object's content: values, index, columns, dtypes, names."""
    import hashlib

    import pandas  # the caller passed a pandas object: it is loaded already

    digest = hashlib.blake2b(digest_size=16)
    digest.update(type(value).__name__.encode())
    if isinstance(value, pandas.DataFrame):
        digest.update(repr([(str(c), str(t)) for c, t in value.dtypes.items()]).encode())
        digest.update(array_hash(pandas.util.hash_pandas_object(value.columns, index=False).to_numpy()).encode())
    else:
        digest.update(repr((value.name, str(value.dtype))).encode())
    index = value if isinstance(value, pandas.Index) else value.index
    digest.update(repr(index.names).encode())
    rows = pandas.util.hash_pandas_object(value, index=not isinstance(value, pandas.Index))
    digest.update(array_hash(rows.to_numpy()).encode())
    return digest.hexdigest()

