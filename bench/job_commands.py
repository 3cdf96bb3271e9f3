"""The job scripts' command lines as the benchmarks start them bare (no orchestration),
and the timer the benchmarks run commands with.

The contract is the pipeline's own (issue #10): Preprocess reads a `dataset_spec.json`
written from the config (`pipeline.dataset_spec.dataset_spec`), Train takes the estimator's
import path and the hyperparameters as `--name value` and reads the columns from the
`schema.json` in its channels, Evaluate takes only paths.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.code_bundle import SCRIPTS_DIR
from pipeline.config import PipelineConfig
from pipeline.dataset_spec import SPEC_FILE, dataset_spec

__all__ = ["evaluate_command", "preprocess_command", "step_seconds", "timed", "train_command", "write_spec"]


def write_spec(cfg: PipelineConfig, folder: Path) -> Path:
    """The `dataset_spec.json` the code bundle would carry for this config."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SPEC_FILE
    path.write_text(json.dumps(dataset_spec(cfg)))
    return path


def preprocess_command(raw: Path, out: Path, spec: Path, python: str = sys.executable) -> list[str]:
    """`python`: the interpreter of the environment the job runs in (this one by default)."""
    return [
        python, str(SCRIPTS_DIR / "preprocess.py"),
        "--input", str(raw), "--output-dir", str(out), "--spec", str(spec),
    ]  # fmt: skip


def train_command(cfg: PipelineConfig, hyperparameters: dict[str, Any], python: str = sys.executable) -> list[str]:
    """As the training toolkit starts train.py: the script's own arguments, then the
    hyperparameters (the channels and model folder come from SM_* environment variables)."""
    training = cfg.training
    command = [
        python, str(SCRIPTS_DIR / "train.py"),
        "--estimator", training.estimator_path,
        "--objective_metric", training.resolved_objective.metric,
        "--categorical_encoding", training.categorical_encoding,
    ]  # fmt: skip
    for key, value in hyperparameters.items():
        command += [f"--{key}", str(value)]
    return command


def evaluate_command(model: Path, test: Path, out: Path, python: str = sys.executable) -> list[str]:
    return [
        python, str(SCRIPTS_DIR / "evaluate.py"),
        "--model", str(model), "--test", str(test), "--output-dir", str(out),
    ]  # fmt: skip


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one command; a failure ends the bench with the command's output."""
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{command[:5]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def step_seconds(record: dict[str, Any]) -> dict[str, float]:
    """Each step's seconds in an execution record (`execution.json`) of a local run."""
    return {
        name: step["ended"] - step["started"]
        for name, step in record["steps"].items()
        if step["started"] and step["ended"]
    }
