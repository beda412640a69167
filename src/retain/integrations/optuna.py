"""Optuna searches whose every trial is a retain result (``pip install 'retain[optuna]'``).

``objective(Train, space, metric="summary.loss")`` is an Optuna objective: each trial's
config (what ``space(trial)`` returns) is ``get(Train, config)``, launched (a finished one is
not run again) and scored by its metric. ``objective.optimize(study, n_trials=20)`` first adds
every finished ``Train`` the space could have suggested to the study as a complete trial
(`reuse`), then runs trials until the study holds ``n_trials`` distinct results: re-running
a script after a crash, or with more trials, computes no finished trial again, and the study
knows their values. See docs/search.md.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

try:
    import optuna
except ImportError as exc:  # said clearly, with the fix
    raise ImportError(
        "retain.integrations.optuna needs the optuna package: pip install 'retain[optuna]'"
    ) from exc
from optuna.distributions import BaseDistribution
from optuna.trial import FixedTrial, FrozenTrial, TrialState, create_trial

from .._api import components_of, make_execution
from .._errors import ConfigError, ExecutionError, MetricMissingError
from .._get import get
from ..component import Component
from ..execution.base import Execution

__all__ = ["ID_ATTR", "MetricMissingError", "Objective", "objective"]

#: The trial user attribute that holds the id of the trial's result.
ID_ATTR = "retain_id"

#: ``space(trial) -> config``: suggests a config update (dotted keys nest).
Space = Callable[[Any], Mapping[str, Any]]
#: ``"summary.<key>"``, ``"metrics.<name>"`` (its last value), several of those (a
#: multi-objective study), or a function of the finished component.
Metric = str | Sequence[str] | Callable[[Component], float | Sequence[float]]


def objective(
    target: type[Component],
    space: Space,
    metric: Metric = "summary.loss",
    *,
    execution: Execution | str | None = None,
) -> Objective:
    """An Optuna objective whose trials are results of `target`.

    Args:
        target: the Component class each trial launches.
        space: ``space(trial) -> config``; name each parameter after the config key it sets
            (``{"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True)}``, dotted for nested
            keys), so that a later study can tell which parameters gave a stored result.
            Fixed keys may be returned too (``{"epochs": 10, ...}``).
        metric: what a trial returns: ``"summary.<key>"`` (from `save_summary`),
            ``"metrics.<name>"`` (the last value logged with `log_metrics`), a sequence of
            those for a multi-objective study, or a function of the finished component.
        execution: where each trial runs: an Execution or its module name
            (``"retain.execution.pool"``); default: in this process (also inside a ``with
            execution:`` block, which would only queue it). The trial waits for its result, so
            an execution that returns before its runs end (slurm) cannot serve.
    """
    return Objective(target, space, metric, execution=execution)


class Objective:
    """The callable `objective` returns: ``study.optimize(objective, ...)`` works as with any
    objective; `optimize` reuses the stored results first."""

    def __init__(
        self,
        target: type[Component],
        space: Space,
        metric: Metric = "summary.loss",
        *,
        execution: Execution | str | None = None,
    ) -> None:
        if not (isinstance(target, type) and issubclass(target, Component)):
            raise TypeError(f"objective() needs a Component class, got {target!r}")
        if not callable(space):
            raise TypeError(f"space must be a function of the trial returning a config, got {space!r}")
        if isinstance(metric, str) or callable(metric):
            _check_metric(metric)
        else:
            metric = tuple(metric)
            for each in metric:
                _check_metric(each)
        self.target = target
        self.space = space
        self.metric = metric
        self.execution = execution
        self._execution: Execution | None = None

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        """Launch the trial's result (run unless finished) and return its metric.

        Raises:
            ConfigError: a parameter does not name the config key it sets.
            LaunchError: the component failed (``study.optimize(..., catch=LaunchError)``
                records a failed trial and goes on).
            ExecutionError: the execution returned before the run ended (a batch system).
        """
        component = get(self.target, dict(self.space(trial)))
        _check_names(trial.params, component)
        trial.set_user_attr(ID_ATTR, component.id)
        if self._execution is None:
            # Dispatched now, even inside a `with execution:` block: the sampler needs the value.
            self._execution = make_execution(self.execution)
        self._execution.dispatch([component])
        if not component.cached():
            raise ExecutionError(
                f"{component!r} has not finished after {type(self._execution).__name__} returned "
                "(it queues runs and returns), but a trial needs its value now: use an execution "
                "that waits for its runs ('retain.execution.pool', 'retain.execution.dask'), or "
                "none (in this process)"
            )
        return self.value(component)

    def value(self, component: Component) -> float | tuple[float, ...]:
        """The metric of a finished `component` (a tuple for several metrics).

        Raises:
            MetricMissingError: it did not save that summary key or log that metric.
        """
        metric = self.metric
        if isinstance(metric, tuple):
            return tuple(_read(component, each) for each in metric)
        if isinstance(metric, str):
            return _read(component, metric)
        found = metric(component)
        if isinstance(found, (int, float)):
            return float(found)
        return tuple(float(each) for each in found)

    def component(self, trial: FrozenTrial) -> Component:
        """The result of a trial of this objective (``objective.component(study.best_trial)``).

        Raises:
            KeyError: the trial was not run by a retain objective (no ``retain_id`` attribute).
        """
        if ID_ATTR not in trial.user_attrs:
            raise KeyError(f"trial {trial.number} has no {ID_ATTR!r} attribute: a retain objective did not run it")
        found = get.by_id(trial.user_attrs[ID_ATTR])
        assert isinstance(found, Component)
        return found

    def reuse(self, study: optuna.Study) -> list[FrozenTrial]:
        """Add to `study`, as complete trials, the finished results of the target class that
        the space could have suggested and the study does not hold yet, oldest first.

        A result fits when replaying the space on its config (an Optuna ``FixedTrial`` whose
        parameters are its config values, by dotted key) suggests values inside their
        distributions and returns a config of the same identity. Results of other searches,
        or of a grid, that fit are reused too; failed, unfinished and NaN-valued ones are not.

        Returns:
            The trials added.

        Raises:
            MetricMissingError: a fitting result has no value for the metric.
        """
        held = {trial.user_attrs.get(ID_ATTR) for trial in study.get_trials(deepcopy=False)}
        several = len(study.directions) > 1
        added: list[FrozenTrial] = []
        for component in components_of(self.target):
            if component.id in held or type(component) is not self.target or not component.cached():
                continue
            fitted = self._replay(component)
            if fitted is None:
                continue
            params, distributions = fitted
            value = self.value(component)
            values = list(value) if isinstance(value, tuple) else [value]
            if any(math.isnan(each) for each in values):
                continue
            if several != isinstance(value, tuple) or len(values) != len(study.directions):
                raise ConfigError(
                    f"the metric {self.metric!r} gives {len(values)} value(s) but the study has "
                    f"{len(study.directions)} direction(s): make them agree"
                )
            trial = create_trial(
                values=values,
                params=params,
                distributions=distributions,
                user_attrs={ID_ATTR: component.id},
            )
            study.add_trial(trial)
            added.append(trial)
        return added

    def optimize(self, study: optuna.Study, n_trials: int, **kwargs: Any) -> optuna.Study:
        """`reuse` the stored results, then run trials until `study` holds `n_trials`
        distinct results in complete trials (reused ones count: a script run again computes
        nothing it computed before, and one given more trials runs only the difference).

        A sampler may propose a config the study holds already (a seeded sampler's random
        start proposes the same first points on every run): that trial costs nothing (its
        result is loaded) and does not count, so trials continue; they stop early when a
        round of trials brings no new result (the sampler proposes only what is held).

        Args:
            study: an Optuna study (in memory, or with its own storage).
            n_trials: the distinct results wanted.
            kwargs: passed to ``study.optimize`` (``timeout``, ``catch``, ``callbacks``...).

        Returns:
            `study`.
        """
        self.reuse(study)
        held = _results(study)
        while n_trials > held:
            study.optimize(self, n_trials=n_trials - held, **kwargs)
            before, held = held, _results(study)
            if held == before:
                break
        return study

    def _replay(self, component: Component) -> tuple[dict[str, Any], dict[str, BaseDistribution]] | None:
        """The parameters (and their distributions) that make the space give `component`'s
        config, or None if it cannot."""
        trial = FixedTrial(_flat(component.config.to_dict()))
        try:
            with warnings.catch_warnings():
                # FixedTrial warns of a value outside its distribution: checked below.
                warnings.simplefilter("ignore")
                config = dict(self.space(trial))
        except ValueError:  # a parameter its config lacks, or a choice it does not offer
            return None
        params, distributions = dict(trial.params), dict(trial.distributions)
        for name, value in params.items():
            distribution = distributions[name]
            try:
                inside = distribution._contains(distribution.to_internal_repr(value))
            except (ValueError, TypeError):
                return None
            if not inside:
                return None
        try:
            same = get(self.target, config).id == component.id
        except (ConfigError, ValueError, TypeError):
            return None
        return (params, distributions) if same else None


def _results(study: optuna.Study) -> int:
    """The distinct results of the study's complete trials."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return len({trial.user_attrs.get(ID_ATTR, trial.number) for trial in trials})


def _check_metric(metric: Any) -> None:
    if callable(metric):
        return
    kind, _, name = metric.partition(".") if isinstance(metric, str) else ("", "", "")
    if kind not in ("summary", "metrics") or not name:
        raise ConfigError(
            f"metric {metric!r} is not 'summary.<key>' or 'metrics.<name>' (e.g. 'summary.loss'), "
            "a sequence of those, or a function of the component"
        )


def _read(component: Component, metric: str) -> float:
    kind, _, name = metric.partition(".")
    if kind == "summary":
        summary = component.load_summary()
        if name not in summary:
            raise MetricMissingError(
                f"{component!r} has no summary value {name!r} (it has {sorted(summary) or 'none'}): "
                "save it with self.save_summary(...), or pick another metric"
            )
        return float(summary[name])
    points = component.metrics(name)
    if not points:
        logged = sorted({point["name"] for point in component.metrics()})
        raise MetricMissingError(
            f"{component!r} logged no metric {name!r} (it logged {logged or 'none'}): "
            "log it with self.log_metrics(...), or pick another metric"
        )
    return float(points[-1]["value"])


def _check_names(params: Mapping[str, Any], component: Component) -> None:
    flat = _flat(component.config.to_dict())
    for name, value in params.items():
        if name not in flat or flat[name] != value:
            found = f"is {flat[name]!r}" if name in flat else "does not exist"
            raise ConfigError(
                f"parameter {name!r} = {value!r} is not the value of config key {name!r} of "
                f"{type(component).__qualname__} (the key {found}): name each parameter after the config "
                f"key it sets, e.g. {{{name!r}: trial.suggest_...({name!r}, ...)}}, so that "
                "later studies find this result again"
            )


def _flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The leaves of a config by dotted key."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
