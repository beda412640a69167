"""retain.integrations.optuna against the real optuna package: every trial is a retain
result, and a study run again (after a crash, with more trials, another seed) reuses every
finished one without computing it again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import retain
from conftest import write_module
from retain import ConfigError, LaunchError, get
from retain.integrations.optuna import ID_ATTR, MetricMissingError, objective

optuna.logging.set_verbosity(optuna.logging.WARNING)

# A tiny component that notes each real run (its config) in runs.txt of the working directory;
# CRASH_AT=n kills the process (os._exit, no cleanup) at the n-th real run, mid-run.
SEARCH = '''
import os

from retain import Component


class Quad(Component):
    Config = {"x": 0.0, "model": {"depth": 1, "act": "relu"}, "epochs": 3}

    def __call__(self):
        with open("runs.txt", "a") as out:
            out.write(f"{self.config.x} {self.config.model.depth} {self.config.model.act}\\n")
        with open("runs.txt") as out:
            count = len(out.readlines())
        if os.environ.get("CRASH_AT") == str(count):
            os._exit(3)
        if self.config.x > 9:
            raise RuntimeError("x out of reach")
        loss = (self.config.x - 2) ** 2 + self.config.model.depth
        for step in range(self.config.epochs):
            self.log_metrics({"loss": loss + self.config.epochs - step}, step=step)
        self.save_summary(loss=loss, size=self.config.model.depth * 10)


def space(trial):
    return {
        "x": trial.suggest_float("x", -5, 5),
        "model.depth": trial.suggest_int("model.depth", 1, 3),
        "model.act": trial.suggest_categorical("model.act", ["relu", "tanh"]),
    }
'''

# Run a study in a fresh process (nothing shared with the last one but the storage) and print
# its trials.
SCRIPT = '''
import json, sys

import optuna

from retain.integrations.optuna import ID_ATTR, objective
from search import Quad, space

optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=int(sys.argv[2])))
objective(Quad, space, metric="summary.loss").optimize(study, n_trials=int(sys.argv[1]))
print(json.dumps([[trial.user_attrs[ID_ATTR], trial.value, trial.params] for trial in study.trials]))
'''


@pytest.fixture
def search(project: Path) -> object:
    write_module(project, "search", SEARCH)
    import search as module

    return module


def runs(tmp_path: Path) -> list[str]:
    path = tmp_path / "runs.txt"
    return path.read_text().splitlines() if path.exists() else []


def study_in_process(tmp_path: Path, project: Path, n_trials: int, seed: int, crash_at: int | None = None) -> subprocess.CompletedProcess[str]:
    (project / "study.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), *sys.path]),
           "RETAIN_STORAGE": str(tmp_path / "storage")}
    env.pop("CRASH_AT", None)
    if crash_at is not None:
        env["CRASH_AT"] = str(crash_at)
    return subprocess.run([sys.executable, str(project / "study.py"), str(n_trials), str(seed)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_study_rerun_after_a_crash_with_more_trials_computes_no_finished_trial_again(
    tmp_path: Path, project: Path, search: object
) -> None:
    crashed = study_in_process(tmp_path, project, n_trials=6, seed=0, crash_at=4)
    assert crashed.returncode == 3, crashed.stderr  # killed during its 4th trial
    assert len(runs(tmp_path)) == 4
    quad = search.Quad  # type: ignore[attr-defined]
    finished = [each for each in retain.status(quad).finished]
    assert len(finished) == 3 and len(retain.status(quad).died) == 1
    losses = {each.id: each.load_summary()["loss"] for each in finished}

    again = study_in_process(tmp_path, project, n_trials=8, seed=0)
    assert again.returncode == 0, again.stderr
    trials = json.loads(again.stdout)
    # The study knows the finished trials (first, oldest first) with their values...
    assert {trial[0]: trial[1] for trial in trials[:3]} == losses
    # ...and holds 8 distinct results: the seeded sampler proposed its first points again,
    # trials that loaded their results (counted once), then new ones.
    results = {trial[0]: trial[1] for trial in trials}
    assert len(results) == 8 and len(trials) == 11
    assert all(results[trial[0]] == trial[1] for trial in trials)
    # It computed only the 5 it lacked (the died one resumed among them): each finished
    # config ran once, ever.
    lines = runs(tmp_path)
    assert len(lines) == 4 + 5
    for each in finished:
        line = f"{each.config.x} {each.config.model.depth} {each.config.model.act}"
        assert lines.count(line) == 1

    # The same script again, or with another seed: nothing runs, the study holds the 8.
    for seed in (0, 1):
        same = study_in_process(tmp_path, project, n_trials=8, seed=seed)
        assert same.returncode == 0, same.stderr
        assert {trial[0]: trial[1] for trial in json.loads(same.stdout)} == results
        assert len(json.loads(same.stdout)) == 8
    assert len(runs(tmp_path)) == 9


def test_each_trial_is_the_result_of_its_config_and_returns_its_metric(tmp_path: Path, search: object) -> None:
    quad = search.Quad  # type: ignore[attr-defined]
    target = objective(quad, search.space, metric="summary.loss")  # type: ignore[attr-defined]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    study.optimize(target, n_trials=3)
    assert len(runs(tmp_path)) == 3
    for trial in study.trials:
        result = target.component(trial)
        assert result.execution.is_finished()
        assert result == get(quad, trial.params)  # the parameters are its config keys
        assert trial.user_attrs[ID_ATTR] == result.id
        assert trial.value == result.load_summary()["loss"]
    best = target.component(study.best_trial)
    assert best.load_summary()["loss"] == min(trial.value for trial in study.trials)
    # study.optimize alone runs trials afresh, but a finished config is not computed again.
    study.enqueue_trial(study.trials[0].params)
    study.optimize(target, n_trials=1)
    assert len(runs(tmp_path)) == 3 and study.trials[-1].value == study.trials[0].value


def test_the_metric_is_a_summary_value_the_last_logged_value_several_or_a_function(
    tmp_path: Path, search: object
) -> None:
    quad, space = search.Quad, search.space  # type: ignore[attr-defined]
    fixed = lambda trial: {**space(trial), "epochs": 4}  # noqa: E731
    last = objective(quad, fixed, metric="metrics.loss")
    study = optuna.create_study()
    last.optimize(study, n_trials=2)
    for trial in study.trials:
        result = last.component(trial)
        assert result.config.epochs == 4
        assert trial.value == result.metrics("loss")[-1]["value"]  # the last of epochs 4, 3, 2, 1 over
        assert trial.value == pytest.approx(result.load_summary()["loss"] + 1)

    both = objective(quad, fixed, metric=["summary.loss", "summary.size"])
    pareto = optuna.create_study(directions=["minimize", "maximize"])
    both.optimize(pareto, n_trials=3)  # the two trials above are reused, one runs
    assert len(runs(tmp_path)) == 3 and len(pareto.trials) == 3
    assert [trial.values[1] for trial in pareto.trials] == [
        10 * both.component(trial).config.model.depth for trial in pareto.trials]

    scored = objective(quad, fixed, metric=lambda result: result.config.x ** 2)
    squares = optuna.create_study()
    assert len(scored.reuse(squares)) == 3
    assert [trial.value for trial in squares.trials] == [
        scored.component(trial).config.x ** 2 for trial in squares.trials]
    with pytest.raises(ConfigError, match="1 value.* 2 direction"):
        last.reuse(optuna.create_study(directions=["minimize", "minimize"]))


def test_reuse_adds_the_finished_results_the_space_could_suggest_and_only_those(
    tmp_path: Path, search: object
) -> None:
    quad, space = search.Quad, search.space  # type: ignore[attr-defined]
    # A grid computed before any search seeds it.
    retain.grid(quad, {"x": [0.0, 1.0], "model.depth": [1, 2]}).launch()
    outside = [
        {"x": 7.0},                                   # out of the range of x
        {"x": 1.0, "model.depth": 4},                 # out of the range of model.depth
        {"x": 1.0, "model.act": "gelu"},              # not a choice of model.act
        {"x": 1.0, "epochs": 5},                      # a key the space does not return
    ]
    for config in outside:
        get(quad, config).launch()
    with pytest.raises(RuntimeError, match="out of reach"):
        get(quad, {"x": 9.5}).launch()                # failed: not a result
    get(quad, {"x": 3.0}).commit()                    # committed, never run
    assert len(runs(tmp_path)) == 4 + 4 + 1

    target = objective(quad, space)
    study = optuna.create_study()
    added = target.reuse(study)
    assert len(added) == 4 == len(study.trials)
    assert sorted((trial.params["x"], trial.params["model.depth"]) for trial in study.trials) == [
        (0.0, 1), (0.0, 2), (1.0, 1), (1.0, 2)]
    assert all(trial.params["model.act"] == "relu" for trial in study.trials)
    assert study.best_value == 1 + 1  # x=1, depth=1
    assert target.reuse(study) == []                  # what it holds is not added twice
    # A trial that fails is recorded as failed (catch), and not reused by the next study.
    failing = objective(quad, lambda trial: {"x": trial.suggest_float("x", 9.5, 9.5)})
    broken = optuna.create_study()
    failing.optimize(broken, n_trials=1, catch=(LaunchError,))
    assert broken.trials[0].state == optuna.trial.TrialState.FAIL
    assert failing.reuse(optuna.create_study()) == []


def test_wrong_uses_are_clear_errors(search: object) -> None:
    quad, space = search.Quad, search.space  # type: ignore[attr-defined]
    renamed = objective(quad, lambda trial: {"x": trial.suggest_float("lr", 0, 1)})
    with pytest.raises(ConfigError, match="parameter 'lr' .* name each parameter after the config key"):
        renamed(optuna.create_study().ask())
    with pytest.raises(ConfigError, match="'loss' is not 'summary.<key>' or 'metrics.<name>'"):
        objective(quad, space, metric="loss")
    with pytest.raises(TypeError, match="needs a Component class"):
        objective(retain.Interface, space)  # type: ignore[arg-type]
    missing = objective(quad, space, metric="summary.accuracy")
    with pytest.raises(MetricMissingError, match=r"no summary value 'accuracy' \(it has \['loss', 'size'\]\)"):
        missing.optimize(optuna.create_study(), n_trials=1)
    with pytest.raises(MetricMissingError, match=r"logged no metric 'acc' \(it logged \['loss'\]\)"):
        objective(quad, space, metric="metrics.acc").optimize(optuna.create_study(), n_trials=1)
    with pytest.raises(KeyError, match="no 'retain_id' attribute"):
        missing.component(optuna.trial.create_trial(value=1.0))


def test_trials_run_in_the_execution_given_and_now_inside_a_with_block(
    tmp_path: Path, project: Path, search: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    quad, space = search.Quad, search.space  # type: ignore[attr-defined]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(project), *sys.path]))
    pooled = objective(quad, space, execution="retain.execution.pool")
    study = pooled.optimize(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)), n_trials=2)
    assert len(runs(tmp_path)) == 2 and len({trial.value for trial in study.trials}) == 2
    assert all(pooled.component(trial).execution.is_finished() for trial in study.trials)
    # Inside a `with execution:` block (which queues launches), a trial still runs at once.
    with get("retain.execution.pool", {"processes": 2}):
        here = objective(quad, space)
        here.optimize(study, n_trials=3)
        assert len(runs(tmp_path)) == 3
    # An execution that returns before its runs end cannot serve a trial: said, not guessed.
    queued = objective(quad, space, execution=get("retain.execution.slurm", {"dry_run": True}))
    with pytest.raises(retain.ExecutionError, match="has not finished after SlurmExecution returned"):
        queued(study.ask())
    assert len(runs(tmp_path)) == 3


def test_a_conditional_space_and_a_study_kept_in_optuna_storage_reuse_too(tmp_path: Path, search: object) -> None:
    quad = search.Quad  # type: ignore[attr-defined]

    def conditional(trial: optuna.Trial) -> dict[str, object]:
        act = trial.suggest_categorical("model.act", ["relu", "tanh"])
        depth = trial.suggest_int("model.depth", 1, 3) if act == "relu" else 1
        return {"x": trial.suggest_float("x", -5, 5), "model.act": act, "model.depth": depth}

    target = objective(quad, conditional)
    first = target.optimize(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)), n_trials=6)
    assert len(runs(tmp_path)) == 6
    again = optuna.create_study()
    assert len(target.reuse(again)) == 6
    # Each trial has the parameters its path suggested, and the values of the first study.
    values = {trial.user_attrs[ID_ATTR]: (trial.params, trial.value) for trial in first.trials}
    assert {trial.user_attrs[ID_ATTR]: (trial.params, trial.value) for trial in again.trials} == values
    assert any("model.depth" not in params for params, _ in values.values())

    # A study in Optuna's own storage: what it holds is not added again.
    url = f"sqlite:///{tmp_path / 'study.db'}"
    kept = optuna.create_study(storage=url, study_name="quad")
    target.optimize(kept, n_trials=7)
    assert len(kept.trials) == 7 and len(runs(tmp_path)) == 7
    loaded = optuna.load_study(storage=url, study_name="quad")
    assert target.reuse(loaded) == []
    target.optimize(loaded, n_trials=7)
    assert len(loaded.trials) == 7 and len(runs(tmp_path)) == 7

    # A result whose metric is NaN is not a trial value.
    assert objective(quad, conditional, metric=lambda result: float("nan")).reuse(optuna.create_study()) == []


def test_without_optuna_the_import_error_says_how_to_install_it() -> None:
    code = ("import sys; sys.modules['optuna'] = None\n"
            "try:\n    import retain.integrations.optuna\n"
            "except ImportError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "needs the optuna package: pip install 'retain[optuna]'" in done.stdout, done.stderr
