"""Element: a class with a default `Config` and versions, identified by its content."""

from __future__ import annotations

# `collections.abc` re-exports these from `_collections_abc`, which the interpreter has
# already loaded; importing the public name would load all of `collections` (~2 ms).
from _collections_abc import Mapping

from ._errors import ConfigError, RetainError, VersionError
from ._sentinel import NOT_GIVEN, NotGivenType
from .config import ConfigSpec, ConfigView, config_spec, copy_tree
from .identity import SHORT_ID_LENGTH, compute_id, drop_defaults, normal_number, remove_paths, same_value, to_json
from .modules import class_reference
from .versions import flatten_versions, parse_version_call

TYPE_CHECKING = False  # typing is not imported at run time: `import retain` stays cheap
if TYPE_CHECKING:
    from typing import Any, ClassVar

    from .versions import Version

__all__ = ["Element"]

_MAX_VERSION_DEPTH = 50

#: Every Element subclass by (module, qualname), so records can name classes that are not
#: importable (defined in a notebook, a test function) as long as they exist in this process.
#: A redefinition replaces its entry, so this grows with the number of class names only.
_classes: dict[tuple[str, str], type] = {}


class Resolved:
    """An element's configuration, resolved once: the values, their JSON, the identity."""

    __slots__ = ("config", "model", "json", "canonical", "id", "baseline")

    def __init__(
        self,
        config: dict[str, Any],
        model: Any,
        json: dict[str, Any],
        canonical: dict[str, Any],
        id: str,
        baseline: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.json = json
        self.canonical = canonical
        self.id = id
        #: the values identity left out (see `retain._baselines`); None for a reloaded record
        self.baseline = baseline


def normalize_json(value: Any) -> Any:
    """JSON with integral floats as ints (``1.0 -> 1``), as in the canonical form."""
    kind = type(value)
    if kind is float or kind is int:
        return normal_number(value)
    if kind is dict:
        return {k: normalize_json(v) for k, v in value.items()}
    if kind is list:
        return [normalize_json(v) for v in value]
    return value


def defaults_json(spec: ConfigSpec, paths: tuple[str, ...]) -> dict[str, Any]:
    """The defaults of `spec` as normalised JSON without the non-identifying `paths` (cached:
    the same object while `Config` is unchanged)."""
    found = spec.defaults_json.get(paths)
    if found is None:
        found = remove_paths(
            normalize_json(to_json(spec.defaults, fallback=spec.json_fallback())), paths
        )
        spec.defaults_json[paths] = found
    return found


class Element:
    """A configurable class: a default `Config` changed by versions.

    Example:
        >>> class Train(Element):
        ...     Config = {"lr": 0.1, "model": {"depth": 2}}
        ...     def version_deep(self, depth=8):
        ...         return {"model.depth": depth}
        >>> Train([{"lr": 0.01}, "~deep(4)"]).config.model.depth
        4

    Class attributes:
        Config: the defaults, a dict (nested allowed; an empty dict accepts any keys) or a
            pydantic model class.
        non_identifying: dotted config keys that do not change results (verbosity, logging):
            they are stored but left out of the identity.
    """

    Config: ClassVar[Any] = {}
    non_identifying: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = "Element"

    _retain_versions: list[str | dict[str, Any]] = []
    _retain_state: Resolved | None = None
    _retain_partial: ConfigView | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _classes[class_reference(cls)] = cls

    def __init__(self, version: Version = None) -> None:
        """Create an element whose config is `Config` changed by `version`.

        Args:
            version: a dict update (dotted keys allowed), a ``"~name(args)"`` string that
                calls ``version_name(args)``, or a list of these applied left to right.
        """
        versions = flatten_versions(version)
        for item in versions:
            if isinstance(item, str):
                parse_version_call(item)  # malformed strings fail here, not later
        self._retain_versions = versions
        self._retain_state = None

    # -- configuration -------------------------------------------------------------------

    @property
    def config(self) -> ConfigView:
        """The resolved configuration, read-only (attribute or item access)."""
        partial = self._retain_partial
        if partial is not None:
            return partial
        return ConfigView(self._retain_resolve().config)

    @property
    def config_model(self) -> Any:
        """The validated pydantic model when `Config` is one, else None."""
        return self._retain_resolve().model

    @classmethod
    def default_config(cls) -> ConfigView:
        """The defaults declared by `Config`, before any version."""
        return ConfigView(copy_tree(config_spec(cls).defaults))

    def version(
        self, version: Version | NotGivenType = NOT_GIVEN, overwrite: bool = False
    ) -> list[str | dict[str, Any]]:
        """Inspect or change the versions.

        `version()` returns the applied versions; `version(v)` appends `v`;
        `version(v, overwrite=True)` replaces them all. An invalid change raises and leaves
        the element as it was.
        """
        if version is NOT_GIVEN and not overwrite:
            return copy_tree(self._retain_versions)  # type: ignore[no-any-return]
        self._retain_before_change()
        added = flatten_versions(None if isinstance(version, NotGivenType) else version)
        for item in added:
            if isinstance(item, str):
                parse_version_call(item)
        previous = (self._retain_versions, self._retain_state)
        self._retain_versions = added if overwrite else [*self._retain_versions, *added]
        self._retain_state = None
        try:
            self._retain_resolve()
        except BaseException:
            self._retain_versions, self._retain_state = previous
            raise
        return copy_tree(self._retain_versions)  # type: ignore[no-any-return]

    @classmethod
    def _retain_family(cls) -> type:
        """The most general class of this hierarchy that is not one of retain's own bases:
        Mnist(Dataset(Interface)) -> Dataset, so any Dataset may replace a Mnist default."""
        generic = ("retain.element", "retain.interface", "retain.component")
        for base in reversed(cls.__mro__):
            if isinstance(base, type) and issubclass(base, Element) and base.__module__ not in generic:
                return base
        return cls

    def _retain_before_change(self) -> None:
        """Hook: refuse changes that would alter a committed identity."""

    # -- identity ------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The content id: 32 hex characters of sha256 over module, class and canonical config."""
        return self._retain_resolve().id

    @property
    def short_id(self) -> str:
        return self._retain_resolve().id[:SHORT_ID_LENGTH]

    @property
    def canonical_config(self) -> dict[str, Any]:
        """The configuration as it enters the identity: defaults and non-identifying keys dropped."""
        return copy_tree(self._retain_resolve().canonical)  # type: ignore[no-any-return]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Element):
            return self.id == other.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        try:
            return f"{type(self).__qualname__} [{self.short_id}]"
        except RetainError:
            return f"{type(self).__qualname__} [invalid config]"

    # -- resolution ----------------------------------------------------------------------

    def _retain_resolve(self) -> Resolved:
        state = self._retain_state
        if state is None:
            state = self._retain_state = self._retain_compute()
        return state

    def _retain_compute(self) -> Resolved:
        cls = type(self)
        spec = config_spec(cls)
        merged = copy_tree(spec.defaults)
        for version in self._retain_versions:
            self._retain_apply(spec, merged, version, 0)
        config, model = spec.validate(merged)
        paths = tuple(cls.non_identifying)
        return identify(cls, spec, config, model, self._retain_baseline(defaults_json(spec, paths)))

    def _retain_baseline(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """The values that identity leaves out: an element has no storage, so today's
        defaults; an interface asks its storage (see `retain._baselines`)."""
        return defaults

    def _retain_apply(self, spec: ConfigSpec, merged: dict[str, Any], version: Any, depth: int) -> None:
        if version is None:
            return
        if depth > _MAX_VERSION_DEPTH:
            raise VersionError(
                f"versions of {type(self).__qualname__} nest deeper than {_MAX_VERSION_DEPTH} "
                "levels; a version method probably returns a version that calls itself"
            )
        if isinstance(version, str):
            call = parse_version_call(version)
            method = getattr(self, call.method_name, None)
            if not callable(method):
                available = sorted(
                    f"~{name[len('version_'):]}" for name in dir(type(self))
                    if name.startswith("version_") and callable(getattr(type(self), name))
                )
                raise VersionError(
                    f"{type(self).__qualname__} has no method {call.method_name}() for version "
                    f"{version!r}; available: {', '.join(available) or '(none)'}"
                )
            self._retain_partial = ConfigView(merged)
            try:
                update = method(*call.args, **call.kwargs)
            except TypeError as exc:
                _raise_if_bad_arguments(method, call, version, exc)
                raise
            finally:
                self._retain_partial = None
            self._retain_apply(spec, merged, update, depth + 1)
        elif type(version) is dict or (
            isinstance(version, Mapping) and not hasattr(version, "__retain_reference__")
        ):
            spec.apply(merged, version)
        elif isinstance(version, (list, tuple)):
            for item in version:
                self._retain_apply(spec, merged, item, depth + 1)
        else:
            raise VersionError(
                f"a version must be a dict, a '~name(...)' string, a list of those, or None; "
                f"a version method of {type(self).__qualname__} returned "
                f"{type(version).__name__} {version!r}"
            )


def _raise_if_bad_arguments(method: Any, call: Any, version: str, exc: TypeError) -> None:
    import inspect  # on an error only: `import retain` stays cheap

    try:
        inspect.signature(method).bind(*call.args, **call.kwargs)
    except TypeError:
        raise VersionError(f"version {version!r} does not fit {call.method_name}(): {exc}") from None
    except ValueError:
        return


def identify(
    cls: type, spec: ConfigSpec, config: dict[str, Any], model: Any, baseline: dict[str, Any]
) -> Resolved:
    """The state of a resolved config: its JSON, canonical form and id, the keys equal to
    their `baseline` left out."""
    config_json = to_json(config, fallback=spec.json_fallback())
    paths = tuple(cls.non_identifying)  # type: ignore[attr-defined]
    canonical = drop_defaults(remove_paths(normalize_json(config_json), paths), baseline)
    module, qualname = class_reference(cls)
    return Resolved(config, model, config_json, canonical, compute_id(module, qualname, canonical), baseline)


def resolved_from_record(
    cls: type, record: dict[str, Any], config: dict[str, Any], config_json: dict[str, Any]
) -> Resolved:
    """The state of an element reloaded from a record: exactly its stored config (`config`,
    with interfaces loaded, and `config_json`) and its stored identity.

    A pydantic `Config` is validated again only to give the values their declared types
    (dates, enums, models); when validation would change a value (a validator that transforms
    its input), the stored values stand and the model is built from them unvalidated.
    """
    spec = config_spec(cls)
    model = None
    if spec.is_pydantic:
        try:
            validated, model = spec.validate(copy_tree(config))
        except ConfigError:
            model = None  # the model changed since; the stored values still stand
        else:
            again = normalize_json(to_json(validated, fallback=spec.json_fallback()))
            if same_value(again, normalize_json(config_json)):
                config = validated
            else:
                model = spec.model.model_construct(**copy_tree(config))
    return Resolved(config, model, config_json, record["canonical_config"], record["id"])
