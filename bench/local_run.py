"""Local mode speed (issue #4 targets: orchestration overhead within 25% of the bare
scripts; a fully cached rerun under 10% of the cold run).

One MLflow server serves every measurement (its boot time, paid once per `run --local`
without `--keep-services`, is printed separately). In one run this prints:
  - cold: `run --local` in an empty workspace (render, moto, staging, every job);
  - cached: the same command again;
  - bare: the same scripts started directly one after another, trials with the same
    parallelism, against the same server;
and the ratios. This machine's timings vary by 10% from one minute to the next, so it runs
BENCH_ROUNDS rounds (default 3), each in a fresh workspace, and prints medians.

    .venv/bin/python bench/local_run.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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
from pipeline.example_data import write_diabetes_csv  # noqa: E402
from pipeline.local.workspace import Workspace  # noqa: E402
from pipeline.tracking_server import TrackingServer  # noqa: E402


def bare_scripts(
    work: Path, env: dict[str, str], cfg: PipelineConfig, trials: list[dict[str, str]], parallel: int
) -> float:
    """preprocess, the trials (`parallel` at a time), evaluate: what the pipeline's jobs do."""
    write_diabetes_csv(work / "raw" / "data.csv")
    spec = write_spec(cfg, work / "code")
    start = time.perf_counter()
    timed(
        preprocess_command(work / "raw", work / "splits", spec),
        {**env, "MLOPS_JOB_NAME": f"bare-pre-{work.parent.name}"},
        work,
    )

    def trial(index: int) -> float:
        hyperparameters = {k: json.loads(v) for k, v in trials[index].items()}
        trial_env = {
            **env,
            "SM_CHANNEL_TRAIN": str(work / "splits/train"),
            "SM_CHANNEL_VALIDATION": str(work / "splits/validation"),
            "SM_MODEL_DIR": str(work / f"model-{index}"),
            "TRAINING_JOB_NAME": f"bare-trial-{index}-{work.parent.name}",
        }
        return timed(train_command(cfg, hyperparameters), trial_env, work)

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(trial, range(len(trials))))
    model = work / "model-0"
    subprocess.run(["tar", "czf", str(work / "model.tar.gz"), "-C", str(model), "."], check=True)
    timed(evaluate_command(work / "model.tar.gz", work / "splits/test", work / "eval"), env, work)
    return time.perf_counter() - start


def workspace_with_data(workspace: Path, cfg: PipelineConfig) -> list[str]:
    """The `run --local` command for a workspace that holds the example data already (it
    is in place before the clock starts, as it is for the bare scripts)."""
    write_diabetes_csv(Workspace(workspace).path(cfg.data.input_uri))
    return [
        sys.executable, "-m", "pipeline.definition", "run", "--local",
        "--config", str(CONFIG), "--workspace", str(workspace),
    ]  # fmt: skip


def one_round(root: Path, server_uri: str, base: dict[str, str]) -> dict[str, Any]:
    """Cold run, cached rerun and bare scripts, in a fresh workspace."""
    cfg = load_config(CONFIG)
    tuning = cfg.tuning
    env = {**base, "MLFLOW_TRACKING_URI": server_uri, "PYTHONPATH": str(REPO)}
    command = workspace_with_data(root / "ws", cfg)
    cold = timed(command, env, root)
    cold_record = json.loads(next((root / "ws" / "executions").glob("*/execution.json")).read_text())
    cached = timed(command, env, root)
    record_path = max((root / "ws" / "executions").glob("*/execution.json"), key=lambda p: p.stat().st_mtime)
    record = json.loads(record_path.read_text())
    tune = next(s for s in record["steps"].values() if s["type"] == "Tuning")
    trials = [t["TunedHyperParameters"] for t in tune["properties"]["TrainingJobSummaries"]]
    static = {k: json.dumps(v) for k, v in cfg.training.hyperparameters.items() if k not in tuning.ranges}
    bare_env = {**base, "MLFLOW_TRACKING_URI": server_uri, "MLFLOW_EXPERIMENT_NAME": "bare"}
    bare_env["MLOPS_TRACKING_CREDENTIALS"] = "none"
    bare = bare_scripts(root / "bare", bare_env, cfg, [{**static, **t} for t in trials], tuning.max_parallel_jobs)
    return {
        "cold": cold,
        "cached": cached,
        "bare": bare,
        "executing": cold_record["ended"] - cold_record["started"],
        "steps": step_seconds(cold_record),
        "cached_statuses": {name: step["status"] for name, step in record["steps"].items()},
        "trials": len(trials),
        "parallel": tuning.max_parallel_jobs,
    }


def main() -> int:
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_"))}
    base["PATH"] = path_with_venv(base.get("PATH", ""))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        boot = time.perf_counter()
        with TrackingServer(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts") as server:
            boot = time.perf_counter() - boot
            for index in range(rounds):
                results.append(one_round(root / f"round-{index}", server.uri, base))
        own_cold, own_cached = own_server_runs(root / "own-server", base)
    first = results[0]
    print(f"trials: {first['trials']}, {first['parallel']} in parallel")
    print(f"cached rerun statuses: {first['cached_statuses']}")
    print(f"MLflow server boot (once per run without --keep-services): {boot:.1f} s")
    for index, r in enumerate(results):
        print(
            f"round {index + 1}: cold {r['cold']:5.2f} s (steps {r['executing']:5.2f} s: "
            + ", ".join(f"{name} {seconds:.2f}" for name, seconds in r["steps"].items())
            + f"), cached {r['cached']:4.2f} s, bare {r['bare']:5.2f} s, "
            f"overhead {(r['cold'] - r['bare']) / r['bare']:4.0%}"
        )
    cold, cached, bare = (statistics.median(r[k] for r in results) for k in ("cold", "cached", "bare"))
    executing = statistics.median(r["executing"] for r in results)
    print(f"median of {rounds} rounds:")
    print(
        f"cold run --local:        {cold:6.2f} s  (executing the steps: {executing:.2f} s; "
        f"start, render and exit: {cold - executing:.2f} s)"
    )
    print(f"fully cached rerun:      {cached:6.2f} s  ({cached / cold:.0%} of cold; target < 10%)")
    print(f"bare scripts, same work: {bare:6.2f} s")
    overheads = sorted((r["cold"] - r["bare"]) / r["bare"] for r in results)
    print(
        f"orchestration overhead:  {cold - bare:6.2f} s  ({(cold - bare) / bare:.0%} of bare; per round "
        + ", ".join(f"{o:.0%}" for o in overheads)
        + "; target <= 25%)"
    )
    print(
        f"without MLFLOW_TRACKING_URI (each run starts its own MLflow server): cold {own_cold:.2f} s, "
        f"fully cached rerun {own_cached:.2f} s ({own_cached / own_cold:.0%})"
    )
    return 0


def own_server_runs(root: Path, base: dict[str, str]) -> tuple[float, float]:
    """A user's first `run --local` and its rerun, each starting (and stopping) its own
    MLflow server: the first waits for the server's boot, the rerun should not."""
    env = {**base, "PYTHONPATH": str(REPO)}
    command = workspace_with_data(root / "ws", load_config(CONFIG))
    return timed(command, env, root), timed(command, env, root)


if __name__ == "__main__":
    sys.exit(main())
