"""Hyperparameter tuning, locally: candidates from the ranges, trials in parallel, the
objective read from each trial's log with the job's regex, best trial first.

Sampling is pure and seeded. `Grid` enumerates the grid; `Random` and `Hyperband` sample
uniformly (or log-uniformly); `Bayesian` is approximated by the same seeded random search
(SageMaker's Bayesian optimiser is not public), which is what SageMaker itself does for
its first trials.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pipeline.errors import LocalModeError

__all__ = ["Trial", "TuningFailed", "best_first", "run_trials", "sample_candidates", "trial_job_name"]


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


def trial_job_name(tuning_job: str, index: int, hyperparameters: Mapping[str, str]) -> str:
    """`<tuning job>-NNN-xxxxxxxx`, the shape SageMaker gives trial jobs."""
    digest = hashlib.sha256(json.dumps(hyperparameters, sort_keys=True).encode()).hexdigest()[:8]
    return f"{tuning_job}-{index:03d}-{digest}"


def best_first(trials: list[Trial], objective_type: str) -> list[Trial]:
    done = [t for t in trials if t.objective is not None]
    return sorted(done, key=lambda t: t.objective if objective_type == "Minimize" else -t.objective)


def run_trials(
    trials: list[Trial], run_one: Callable[[Trial], float | None], parallel: int, on_done: Callable[[Trial], None]
) -> list[Trial]:
    """Run trials `parallel` at a time; a failed trial is recorded, not fatal (as on SageMaker).
    An interruption cancels the trials not yet started and returns at once, without waiting
    for the running ones (the caller stops their jobs: `LocalJobRunner.stop`)."""

    def attempt(trial: Trial) -> Trial:
        try:
            trial.objective = run_one(trial)
            if trial.objective is None:
                trial.error = "objective metric not found in the trial's log"
        except Exception as exc:
            trial.error = str(exc)
        on_done(trial)
        return trial

    pool = ThreadPoolExecutor(max_workers=parallel)
    try:
        results = list(pool.map(attempt, trials))
    except BaseException:  # interrupted: start no more trials; the caller stops the running ones
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results
