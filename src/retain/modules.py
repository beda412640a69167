"""The module convention: a class is named by its module (`"evolution.simulate_offspring"`),
which holds exactly one Interface class, or explicitly as `"module:Class"`."""

from __future__ import annotations

import importlib
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any

from ._errors import ModuleResolutionError

__all__ = ["class_reference", "resolve_class"]

_MAIN = "__main__"


def main_module_name() -> str:
    """The importable name of the running script, so results outlive `__main__`.

    `python -m pkg.mod` gives `pkg.mod`; `python path/train.py` gives `train` (its directory
    is `sys.path[0]`); an interactive session or notebook stays `__main__`.
    """
    main = sys.modules.get(_MAIN)
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != _MAIN:
        name: str = spec.name
        return name.removesuffix(".__main__")
    path = getattr(main, "__file__", None)
    if isinstance(path, str):
        stem: str = os.path.splitext(os.path.basename(path))[0]
        if stem.isidentifier():
            return stem
    return _MAIN


def class_reference(cls: type) -> tuple[str, str]:
    """`(module, qualname)` naming `cls` stably across processes (cached on the class)."""
    cached = cls.__dict__.get("_retain_reference")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    module = cls.__module__
    if module == _MAIN or module == "__mp_main__":  # multiprocessing's re-import of the script
        module = main_module_name()
    reference = (module, cls.__qualname__)
    type.__setattr__(cls, "_retain_reference", reference)
    return reference


def resolve_class(reference: str, base: type) -> type:
    """The class a reference names: `"module"` (its one `base` subclass) or `"module:Class"`.

    Raises:
        ModuleResolutionError: the module cannot be imported, or has zero or several
            candidate classes, or does not have the named class.
    """
    if not isinstance(reference, str) or not reference.strip():
        raise ModuleResolutionError(
            f"expected a class or a module name such as 'evolution.simulate_offspring'; got "
            f"{reference!r}"
        )
    module_name, _, qualname = reference.strip().partition(":")
    module = _import(module_name)
    if qualname:
        return _lookup(module, module_name, qualname, base)
    candidates = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, base)
        and obj.__module__ == module.__name__
        and "<locals>" not in obj.__qualname__
    ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        found = sorted(
            name
            for name, obj in vars(module).items()
            if isinstance(obj, type) and issubclass(obj, base)
        )
        imported = f" (imported, not defined there: {', '.join(found)})" if found else ""
        raise ModuleResolutionError(
            f"module {module_name!r} defines no {base.__name__} subclass{imported}; define "
            f"one there, or name the class with '{module_name}:ClassName'"
        )
    names = ", ".join(sorted(c.__qualname__ for c in candidates))
    raise ModuleResolutionError(
        f"module {module_name!r} defines several {base.__name__} classes ({names}); pick one "
        f"with '{module_name}:{candidates[0].__qualname__}', or keep one class per module"
    )


def _import(module_name: str) -> ModuleType:
    if module_name == main_module_name() and module_name != _MAIN:
        # The script that is running *is* this module: reuse its classes rather than
        # importing the file a second time as a different module with different classes.
        main = sys.modules.get(_MAIN)
        if main is not None:
            return main
    if module_name in sys.modules:
        return sys.modules[module_name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name) and module_name[len(exc.name):][:1] in ("", "."):
            raise ModuleResolutionError(
                f"no module named {module_name!r}{_class_hint(module_name)}; check the spelling, "
                f"and that its directory is on sys.path (the current directory is {os.getcwd()!r})"
            ) from exc
        raise ModuleResolutionError(
            f"module {module_name!r} was found but failed to import: {exc}"
        ) from exc
    except Exception as exc:
        raise ModuleResolutionError(
            f"module {module_name!r} failed to import: {type(exc).__name__}: {exc}"
        ) from exc


def _class_hint(module_name: str) -> str:
    """`; did you mean 'pkg.mod:Class'?` when ``pkg.mod.Class`` names a class written as a
    module path (the parent module imports and has that attribute); else nothing."""
    parent, _, name = module_name.rpartition(".")
    if not parent or not name:
        return ""
    try:
        module = importlib.import_module(parent)
    except Exception:
        return ""
    if isinstance(getattr(module, name, None), type):
        return f" (a class is named with a colon: did you mean '{parent}:{name}'?)"
    return ""


def _lookup(module: ModuleType, module_name: str, qualname: str, base: type) -> type:
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            if "<locals>" in qualname:
                raise ModuleResolutionError(
                    f"class {qualname!r} was defined inside a function and cannot be imported "
                    f"again; define it at the top level of module {module_name!r}"
                )
            import difflib

            classes = sorted(
                name for name, value in vars(module).items()
                if isinstance(value, type) and issubclass(value, base) and value.__module__ == module.__name__
            )
            close = difflib.get_close_matches(qualname, classes, n=1, cutoff=0.6)
            if not close:
                close = [name for name in classes if name.lower() == qualname.lower()][:1]
            hint = f"; did you mean '{module_name}:{close[0]}'?" if close else ""
            listed = ", ".join(classes) if classes else "none"
            raise ModuleResolutionError(
                f"module {module_name!r} has no class {qualname!r} (its {base.__name__} classes: "
                f"{listed}){hint}"
            )
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ModuleResolutionError(
            f"{module_name}:{qualname} is not a {base.__name__} subclass"
        )
    return obj
