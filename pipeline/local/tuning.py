"""Hyperparameter tuning, locally: candidates from the ranges, trials in parallel, the
objective read from each trial's log with the job's regex, best trial first.

Sampling is seeded. `Grid` enumerates the grid; `Random` samples uniformly (or
log-uniformly); `Bayesian` asks Optuna's TPE sampler (a Bayesian optimiser: a model of good
and bad regions fitted to the trials so far), told each trial's objective as it ends, its
first trials random as SageMaker's are (SageMaker's own optimiser, a Gaussian process, is
not public); `Hyperband` samples as `Random` does and stops weak trials early from the objective values
they print as they train (`AsyncHalving`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.errors import LocalModeError
from pipeline.local.jobs import TrialStopped

__all__ = [
    "STOPPED_EARLY",
    "AsyncHalving",
    "BayesianSearch",
    "ListedSearch",
    "Search",
    "Trial",
    "TuningFailed",
    "best_first",
    "early_stopping",
    "run_trials",
    "sample_candidates",
    "search_for",
    "trial_job_name",
]


class TuningFailed(LocalModeError):
    def __init__(self, message: str, log_path: str = "") -> None:
        super().__init__(message)
        self.log_path = log_path


@dataclass
class Trial:
    job_name: str
    hyperparameters: dict[str, str]
    objective: float | None = None
    error: str = ""


def _draw(spec: Mapping[str, Any], rng: random.Random, integer: bool) -> str:
    low, high = float(spec["MinValue"]), float(spec["MaxValue"])
    scaling = spec.get("ScalingType", "Auto")
    if scaling == "Logarithmic" and low > 0:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    elif scaling == "ReverseLogarithmic" and high < 1:
        value = 1 - math.exp(rng.uniform(math.log(1 - high), math.log(1 - low)))
    else:
        value = rng.uniform(low, high)
    return str(round(value)) if integer else repr(value)


def _grid(ranges: Mapping[str, Any]) -> list[dict[str, str]]:
    axes: list[tuple[str, list[str]]] = []
    for spec in ranges.get("IntegerParameterRanges", []):
        axes.append((spec["Name"], [str(v) for v in range(int(spec["MinValue"]), int(spec["MaxValue"]) + 1)]))
    for spec in ranges.get("CategoricalParameterRanges", []):
        axes.append((spec["Name"], list(spec["Values"])))
    names = [name for name, _ in axes]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(values for _, values in axes))]


def sample_candidates(ranges: Mapping[str, Any], strategy: str, max_jobs: int, seed: int = 0) -> list[dict[str, str]]:
    """Up to `max_jobs` distinct hyperparameter sets, as the strings the API carries."""
    if strategy == "Grid":
        return _grid(ranges)[:max_jobs]
    rng = random.Random(seed)
    candidates: list[dict[str, str]] = []
    seen: set[str] = set()
    for _ in range(max_jobs * 20):
        candidate = {spec["Name"]: _draw(spec, rng, True) for spec in ranges.get("IntegerParameterRanges", [])}
        candidate |= {spec["Name"]: _draw(spec, rng, False) for spec in ranges.get("ContinuousParameterRanges", [])}
        candidate |= {spec["Name"]: rng.choice(spec["Values"]) for spec in ranges.get("CategoricalParameterRanges", [])}
        key = json.dumps(candidate, sort_keys=True)
        if key not in seen:
            seen.add(key)
            candidates.append(candidate)
        if len(candidates) == max_jobs:
            break
    return candidates


class Search(Protocol):
    """Where the next trial's hyperparameters come from: `ask` (None when the search has no
    more to give) and `tell` (a trial's objective, None when it failed)."""

    def ask(self) -> dict[str, str] | None: ...

    def tell(self, hyperparameters: dict[str, str], objective: float | None) -> None: ...


class ListedSearch:
    """Candidates decided up front (`Grid`, `Random`, `Hyperband`)."""

    def __init__(self, candidates: list[dict[str, str]]) -> None:
        self._left = list(candidates)

    def ask(self) -> dict[str, str] | None:
        return self._left.pop(0) if self._left else None

    def tell(self, hyperparameters: dict[str, str], objective: float | None) -> None:
        pass


class BayesianSearch:
    """Optuna's TPE sampler over the ranges, seeded. SageMaker's `ScalingType` maps to
    Optuna's `log` for `Logarithmic`; `ReverseLogarithmic` is searched linearly."""

    def __init__(self, ranges: Mapping[str, Any], objective_type: str, max_jobs: int, seed: int = 0) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._distributions = _distributions(ranges)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(4, max(1, max_jobs // 3)))
        direction = "minimize" if objective_type == "Minimize" else "maximize"
        self._study = optuna.create_study(direction=direction, sampler=sampler)
        self._asked: dict[str, Any] = {}
        self._left = max_jobs

    def ask(self) -> dict[str, str] | None:
        for _ in range(50):  # a distinct set: a repeat would rerun the same job
            if self._left <= 0:
                return None
            trial = self._study.ask(self._distributions)
            candidate = {name: _as_text(value) for name, value in trial.params.items()}
            key = json.dumps(candidate, sort_keys=True)
            if key not in self._asked:
                self._asked[key], self._left = trial, self._left - 1
                return candidate
            self._study.tell(trial, state=_pruned())
        return None

    def tell(self, hyperparameters: dict[str, str], objective: float | None) -> None:
        trial = self._asked[json.dumps(hyperparameters, sort_keys=True)]
        if objective is None or not math.isfinite(objective):
            self._study.tell(trial, state=_failed())
        else:
            self._study.tell(trial, objective)


def _pruned() -> Any:
    import optuna

    return optuna.trial.TrialState.PRUNED


def _failed() -> Any:
    import optuna

    return optuna.trial.TrialState.FAIL


def _distributions(ranges: Mapping[str, Any]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found: dict[str, Any] = {}
    for spec in ranges.get("IntegerParameterRanges", []):
        log = spec.get("ScalingType") == "Logarithmic" and int(spec["MinValue"]) > 0
        found[spec["Name"]] = IntDistribution(int(spec["MinValue"]), int(spec["MaxValue"]), log=log)
    for spec in ranges.get("ContinuousParameterRanges", []):
        log = spec.get("ScalingType") == "Logarithmic" and float(spec["MinValue"]) > 0
        found[spec["Name"]] = FloatDistribution(float(spec["MinValue"]), float(spec["MaxValue"]), log=log)
    for spec in ranges.get("CategoricalParameterRanges", []):
        found[spec["Name"]] = CategoricalDistribution(list(spec["Values"]))
    return found


def _as_text(value: Any) -> str:
    """As the API carries a hyperparameter: integers as digits, floats by repr, categories as given."""
    return value if isinstance(value, str) else str(value) if isinstance(value, int) else repr(float(value))


def search_for(ranges: Mapping[str, Any], strategy: str, objective_type: str, max_jobs: int, seed: int = 0) -> Search:
    if strategy == "Bayesian":
        return BayesianSearch(ranges, objective_type, max_jobs, seed)
    return ListedSearch(sample_candidates(ranges, strategy, max_jobs, seed))


class AsyncHalving:
    """Hyperband's early stopping, as asynchronous successive halving (ASHA): a trial's
    objective is looked at each time it reaches a rung, its `eta`-th, `eta`²-th ... report
    of the objective metric; it goes on only if it is among the best 1/`eta` of the
    objectives trials have had at that rung, once `eta` have reached it. Trials report
    through their logs; a trial is never judged on its first report, so a script that
    prints its objective once, at the end (the bundled train.py), runs to its end, as it
    would under SageMaker's Hyperband, which needs intermediate values too. Thread-safe:
    parallel trials report at once."""

    def __init__(self, objective_type: str, eta: int = 3) -> None:
        self.minimize, self.eta = objective_type == "Minimize", eta
        self._reports: dict[str, int] = {}
        self._rungs: dict[int, list[float]] = {}
        self._lock = threading.Lock()

    def keep_going(self, trial: str, value: float) -> bool:
        with self._lock:
            count = self._reports[trial] = self._reports.get(trial, 0) + 1
            rung = round(math.log(count, self.eta), 9)
            if count < self.eta or rung != int(rung):
                return True
            seen = self._rungs.setdefault(int(rung), [])
            seen.append(value)
            if len(seen) < self.eta:
                return True
            ranked = sorted(seen, reverse=not self.minimize)
            cutoff = ranked[max(1, len(ranked) // self.eta) - 1]
            return value <= cutoff if self.minimize else value >= cutoff


STOPPED_EARLY = "stopped early"  # a Trial.error that is a decision, not a failure


def early_stopping(
    config: Mapping[str, Any], definition: Mapping[str, Any]
) -> Callable[[str], Callable[[str], bool]] | None:
    """For a `Hyperband` tuning job: trial name -> the line watcher its job is given
    (`LocalJobRunner.training(keep_going=...)`), reading the objective with its
    MetricDefinition's regex and asking `AsyncHalving`; None for other strategies."""
    if config.get("Strategy") != "Hyperband":
        return None
    objective = config["HyperParameterTuningJobObjective"]
    regexes = [d["Regex"] for d in definition["AlgorithmSpecification"].get("MetricDefinitions", [])
               if d["Name"] == objective["MetricName"]]  # fmt: skip
    if not regexes:
        return None
    halving, pattern = AsyncHalving(objective["Type"]), re.compile(regexes[0])

    def watcher(trial: str) -> Callable[[str], bool]:
        def keep_going(line: str) -> bool:
            match = pattern.search(line)
            if not match:
                return True
            try:
                value = float(match.group(1) if match.groups() else match.group(0))
            except ValueError:
                return True
            return not math.isfinite(value) or halving.keep_going(trial, value)

        return keep_going

    return watcher


def trial_job_name(tuning_job: str, index: int, hyperparameters: Mapping[str, str]) -> str:
    """`<tuning job>-NNN-xxxxxxxx`, the shape SageMaker gives trial jobs."""
    digest = hashlib.sha256(json.dumps(hyperparameters, sort_keys=True).encode()).hexdigest()[:8]
    return f"{tuning_job}-{index:03d}-{digest}"


def best_first(trials: list[Trial], objective_type: str) -> list[Trial]:
    done = [t for t in trials if t.objective is not None]
    return sorted(done, key=lambda t: t.objective if objective_type == "Minimize" else -t.objective)


def run_trials(
    search: Search,
    new_trial: Callable[[int, dict[str, str]], Trial],
    run_one: Callable[[Trial], float | None],
    parallel: int,
    on_done: Callable[[Trial], None],
) -> list[Trial]:
    """Run the search's trials `parallel` at a time, telling it each result as the trial
    ends and asking for the next then (as SageMaker's Bayesian search does); a failed trial
    is recorded, not fatal (as on SageMaker). An interruption starts no more trials and
    returns at once, without waiting for the running ones (the caller stops their jobs:
    `LocalJobRunner.stop`). `new_trial(index, hyperparameters)`: index from 1."""

    def attempt(trial: Trial) -> Trial:
        try:
            trial.objective = run_one(trial)
            if trial.objective is None:
                trial.error = "objective metric not found in the trial's log"
        except TrialStopped as exc:
            trial.error = f"{STOPPED_EARLY}: {exc.reason}"
        except Exception as exc:
            trial.error = str(exc)
        return trial

    trials: list[Trial] = []
    pool = ThreadPoolExecutor(max_workers=parallel)
    running: set[Future[Trial]] = set()
    try:
        while True:
            while len(running) < parallel and (candidate := search.ask()) is not None:
                trial = new_trial(len(trials) + 1, candidate)
                trials.append(trial)
                running.add(pool.submit(attempt, trial))
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                trial = future.result()
                search.tell(trial.hyperparameters, trial.objective)
                on_done(trial)
    except BaseException:  # interrupted: start no more trials; the caller stops the running ones
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return trials
