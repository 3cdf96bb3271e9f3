"""Local run at scale (issue #10 targets: 10x the rows costs at most 12x the time; a job's
peak memory at most 3x the table's in-memory size; orchestration overhead within 10% of
the bare scripts at 1M rows).

Generates regression tables of 100k and 1M rows x 30 columns (20 numeric, 10 categorical
with 4 to 40 string values each, 3% of the cells missing; the target is a linear function of
the numbers plus an effect per category plus noise), writes them as CSV in a temp folder and,
against one MLflow server started for the bench, for each size:
  - bare: preprocess, train and evaluate started directly one after another on the CSV
    (bench/job_commands.py), the model packed in between as SageMaker would;
  - cold: `run --local` of the default config in an empty workspace, reading the CSV
    where it is (`--param InputDataUri=<path>`), with every column a feature,
    HistGradientBoosting with its defaults, no tuning, and a gate that passes.
It prints the time per step (the execution record's started/ended), each job's peak memory
(its usage.json) against the table's in-memory size as pandas reads it
(`memory_usage(deep=True)`), the bare scripts' time and each one's own peak (started
through the same pipeline/local/measured_child.py, so both measure the script alone), and
the targets, met or not. The memory target is judged at 1M rows: at 100k a job's
interpreter and libraries alone outweigh the table. The bare scripts run first at each
size, so they pay for the cold file cache, not the local run.

    .venv/bin/python bench/scale.py
    BENCH_SCALE_ROWS=2000,20000 .venv/bin/python bench/scale.py   # a quick check of the bench
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CONFIG = REPO / "config" / "pipeline.yaml"

from bench.job_commands import (  # noqa: E402
    evaluate_command,
    preprocess_command,
    step_seconds,
    timed,
    train_command,
    write_spec,
)
from pipeline.child_process import path_with_venv  # noqa: E402
from pipeline.config import PipelineConfig  # noqa: E402
from pipeline.config_loader import load_config  # noqa: E402
from pipeline.local.jobs import MEASURED_CHILD  # noqa: E402
from pipeline.tracking_server import TrackingServer  # noqa: E402

ROWS = tuple(int(n) for n in os.environ.get("BENCH_SCALE_ROWS", "100000,1000000").split(","))
N_NUMERIC, N_CATEGORICAL, MISSING = 20, 10, 0.03
OVERRIDES = [
    "data.features=null",  # every column but the target
    "training.estimator=hist_gradient_boosting",
    "tuning.enabled=false",
    "training.hyperparameters={}",
    "training.objective.metric=validation:rmse",
    "quality_gate.metric=regression_metrics.rmse.value",
    "quality_gate.threshold=1e12",  # the bench measures speed, not the model
]
TIME_RATIO_TARGET, MEMORY_RATIO_TARGET, OVERHEAD_TARGET = 12.0, 3.0, 0.10


def generate_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """Vectorised: one normal matrix for the numbers, one integer draw per categorical column."""
    rng = np.random.default_rng(seed)
    numbers = rng.standard_normal((rows, N_NUMERIC)) * rng.uniform(0.5, 20, N_NUMERIC) + rng.uniform(-50, 50, N_NUMERIC)
    target = (numbers - numbers.mean(axis=0)) / numbers.std(axis=0) @ rng.uniform(-3, 3, N_NUMERIC)
    columns: dict[str, Any] = {f"num_{j:02d}": numbers[:, j].round(4) for j in range(N_NUMERIC)}
    for j in range(N_CATEGORICAL):
        cardinality = 4 + 4 * j
        codes = rng.integers(0, cardinality, rows)
        target += rng.normal(0, 2, cardinality)[codes]
        columns[f"cat_{j}"] = np.array([f"c{j}_value_{k}" for k in range(cardinality)], dtype=object)[codes]
    for values in columns.values():
        values[rng.random(rows) < MISSING] = None if values.dtype == object else np.nan
    columns["target"] = (target + rng.normal(0, 1, rows)).round(4)
    return pd.DataFrame(columns)


def measured(command: list[str], env: dict[str, str], cwd: Path, scripts: dict[str, Any], name: str) -> None:
    """`timed`, into `scripts[name]` with the script's own peak memory (MB)."""
    usage_file = cwd / f"{name}.usage.json"
    seconds = timed([sys.executable, "-I", "-S", str(MEASURED_CHILD), str(usage_file), *command], env, cwd)
    scripts[name] = {"seconds": seconds, "peak_memory_mb": json.loads(usage_file.read_text())["peak_memory_mb"]}


def bare_scripts(csv: Path, work: Path, env: dict[str, str], cfg: PipelineConfig) -> tuple[float, dict[str, Any]]:
    """Preprocess, train, pack the model, evaluate: the pipeline's jobs without the pipeline.
    Their total time, and each one's time and peak memory."""
    work.mkdir(parents=True)
    spec = write_spec(cfg, work / "code")
    scripts: dict[str, Any] = {}
    start = time.perf_counter()
    pre_env = {**env, "MLOPS_JOB_NAME": f"bare-pre-{work.name}"}
    measured(preprocess_command(csv, work / "splits", spec), pre_env, work, scripts, "preprocess")
    channels = {
        "SM_CHANNEL_TRAIN": str(work / "splits/train"),
        "SM_CHANNEL_VALIDATION": str(work / "splits/validation"),
        "SM_MODEL_DIR": str(work / "model"),
        "TRAINING_JOB_NAME": f"bare-train-{work.name}",
    }
    train = train_command(cfg, dict(cfg.training.hyperparameters))
    measured(train, {**env, **channels}, work, scripts, "train")
    subprocess.run(["tar", "czf", str(work / "model.tar.gz"), "-C", str(work / "model"), "."], check=True)
    evaluate = evaluate_command(work / "model.tar.gz", work / "splits/test", work / "eval")
    measured(evaluate, env, work, scripts, "evaluate")
    return time.perf_counter() - start, scripts


def local_run(csv: Path, workspace: Path, env: dict[str, str]) -> dict[str, Any]:
    """A cold `run --local`: its wall time, each step's time and each job's usage.json."""
    workspace.mkdir(parents=True)
    command = [
        sys.executable, "-m", "pipeline.definition", "run", "--local", "--config", str(CONFIG),
        "--workspace", str(workspace), "--param", f"InputDataUri={csv}",
        *(arg for override in OVERRIDES for arg in ("--set", override)),
    ]  # fmt: skip
    seconds = timed(command, env, workspace.parent)
    record = json.loads(next((workspace / "executions").glob("*/execution.json")).read_text())
    return {
        "total": seconds,
        "executing": record["ended"] - record["started"],
        "steps": step_seconds(record),
        "jobs": {
            path.parent.name: json.loads(path.read_text())
            for path in sorted((workspace / "jobs").glob("*/usage.json"), key=lambda p: p.stat().st_mtime)
        },
    }


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    cfg = load_config(CONFIG, overrides=OVERRIDES)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_", "SM_"))}
    base["PATH"] = path_with_venv(base.get("PATH", ""))
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with TrackingServer(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts") as server:
            local_env = {**base, "MLFLOW_TRACKING_URI": server.uri, "PYTHONPATH": str(REPO)}
            bare_env = {**base, "MLFLOW_TRACKING_URI": server.uri, "MLFLOW_EXPERIMENT_NAME": "bare"}
            bare_env["MLOPS_TRACKING_CREDENTIALS"] = "none"
            for rows in ROWS:
                start = time.perf_counter()
                frame = generate_table(rows)
                generated = time.perf_counter() - start
                csv = root / f"table-{rows}.csv"
                frame.to_csv(csv, index=False)
                written = time.perf_counter() - start - generated
                del frame
                in_memory = int(pd.read_csv(csv).memory_usage(deep=True).sum())
                bare, bare_scripts_run = bare_scripts(csv, root / f"bare-{rows}", bare_env, cfg)
                run = local_run(csv, root / f"ws-{rows}", local_env)
                results[rows] = {
                    **run,
                    "bare": bare,
                    "bare_scripts": bare_scripts_run,
                    "in_memory": in_memory,
                    "csv": csv.stat().st_size,
                    "generated": generated,
                    "written": written,
                }
    report(results)
    return 0


def report(results: dict[int, dict[str, Any]]) -> None:
    mb = 1024 * 1024
    print(
        f"regression tables: {N_NUMERIC} numeric + {N_CATEGORICAL} categorical columns (4-40 string values), "
        f"{MISSING:.0%} missing cells; HistGradientBoostingRegressor defaults, no tuning"
    )
    for rows, r in results.items():
        print(
            f"{rows:>9,} rows: generated in {r['generated']:.1f} s, CSV {r['csv'] / mb:.0f} MB written in "
            f"{r['written']:.1f} s, in memory as pandas reads it {r['in_memory'] / mb:.0f} MB"
        )
    for rows, r in results.items():
        steps = ", ".join(f"{name} {seconds:.2f}" for name, seconds in r["steps"].items())
        overhead = (r["total"] - r["bare"]) / r["bare"]
        print(
            f"{rows:>9,} rows: cold run --local {r['total']:.2f} s (steps {r['executing']:.2f} s: {steps}); "
            f"bare scripts {r['bare']:.2f} s; overhead {r['total'] - r['bare']:+.2f} s ({overhead:+.0%})"
        )
        for job, usage in r["jobs"].items():
            bare = next((b for name, b in r["bare_scripts"].items() if job.endswith(f"-{name}")), None)
            bare = bare or {"seconds": float("nan"), "peak_memory_mb": float("nan")}
            print(
                f"    job {job}: {usage['seconds']:.2f} s, peak {usage['peak_memory_mb']:.0f} MB "
                f"({usage['peak_memory_mb'] * mb / r['in_memory']:.1f}x the table in memory); bare script "
                f"{bare['seconds']:.2f} s, its own peak {bare['peak_memory_mb']:.0f} MB "
                f"({bare['peak_memory_mb'] * mb / r['in_memory']:.1f}x)"
            )
    small, large = results[min(results)], results[max(results)]
    factor = max(results) / min(results)
    steps_ratio = large["executing"] / small["executing"]
    total_ratio = large["total"] / small["total"]
    print(
        f"{factor:.0f}x the rows: {steps_ratio:.1f}x the steps' time, {total_ratio:.1f}x the total "
        f"(target <= {TIME_RATIO_TARGET:.0f}x): {met(steps_ratio <= TIME_RATIO_TARGET)}"
    )
    job, usage = max(large["jobs"].items(), key=lambda item: item[1]["peak_memory_mb"])
    memory_ratio = usage["peak_memory_mb"] * mb / large["in_memory"]
    script, own = max(((k, v["peak_memory_mb"]) for k, v in large["bare_scripts"].items()), key=lambda kv: kv[1])
    print(
        f"largest peak at {max(results):,} rows: {job} {usage['peak_memory_mb']:.0f} MB (usage.json) = "
        f"{memory_ratio:.1f}x the table's {large['in_memory'] / mb:.0f} MB; bare {script} {own:.0f} MB = "
        f"{own * mb / large['in_memory']:.1f}x (target <= {MEMORY_RATIO_TARGET:.0f}x): "
        f"{met(memory_ratio <= MEMORY_RATIO_TARGET)}"
    )
    overhead = (large["total"] - large["bare"]) / large["bare"]
    print(
        f"orchestration overhead at {max(results):,} rows: {overhead:.0%} of the bare scripts "
        f"(target <= {OVERHEAD_TARGET:.0%}): {met(overhead <= OVERHEAD_TARGET)}"
    )
    # The same scripts vary by seconds from one start to the next on a busy 2-core machine;
    # what the local run adds around its jobs is its wall time minus the jobs' own.
    jobs = sum(usage["seconds"] for usage in large["jobs"].values())
    around = large["total"] - jobs
    print(
        f"  of which around the jobs (wall time {large['total']:.2f} s - the jobs' own {jobs:.2f} s): "
        f"{around:.2f} s = {around / large['bare']:.0%} of the bare scripts"
    )


if __name__ == "__main__":
    sys.exit(main())
