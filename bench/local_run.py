"""Local mode speed (issue #4: orchestration overhead within 25% of the bare scripts, a
fully cached rerun under 10% of the cold run; issue #20: a cold run at most 1.10x its bare
scripts in the project environment, and the cost of the image's environment).

One MLflow server serves every measurement (its boot time, paid once per `run --local`
without `--keep-services`, is printed separately), and one machine cache (rendered
definitions, job environments) in a temporary folder. It prints:
  - the image environment's first build (uv's wheel cache as this machine has it) and its
    reuse by a later command;
  - for each job environment (`--job-env project`, `--job-env image`):
    - cold: `run --local` in an empty workspace (moto, staging, every job; the definition
      rendered by an earlier workspace, as the machine cache keeps it);
    - cached: the same command again;
    - bare: the same scripts started directly in the same Python, one after another,
      trials with the same parallelism, against the same server;
  and the ratios. This machine's timings vary by 10% from one minute to the next, so it runs
BENCH_ROUNDS rounds (default 3), each in fresh workspaces, and prints medians.

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
from pipeline.code_bundle import code_bundle  # noqa: E402
from pipeline.config import PipelineConfig  # noqa: E402
from pipeline.config_loader import load_config  # noqa: E402
from pipeline.example_data import write_diabetes_csv  # noqa: E402
from pipeline.local.job_environment import ImageEnvironments, JobEnvironment, job_environments  # noqa: E402
from pipeline.local.workspace import Workspace  # noqa: E402
from pipeline.tracking_server import TrackingServer  # noqa: E402


def bare_scripts(
    work: Path,
    env: dict[str, str],
    cfg: PipelineConfig,
    trials: list[dict[str, str]],
    parallel: int,
    python: JobEnvironment,
) -> float:
    """preprocess, the trials (`parallel` at a time), evaluate: what the pipeline's jobs do,
    in `python`."""
    write_diabetes_csv(work / "raw" / "data.csv")
    spec = write_spec(cfg, work / "code")
    env = {**env, "PATH": python.path(env.get("PATH", ""))}
    interpreter = str(python.python)
    start = time.perf_counter()
    timed(
        preprocess_command(work / "raw", work / "splits", spec, interpreter),
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
        return timed(train_command(cfg, hyperparameters, interpreter), trial_env, work)

    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(trial, range(len(trials))))
    model = work / "model-0"
    subprocess.run(["tar", "czf", str(work / "model.tar.gz"), "-C", str(model), "."], check=True)
    timed(evaluate_command(work / "model.tar.gz", work / "splits/test", work / "eval", interpreter), env, work)
    return time.perf_counter() - start


def workspace_with_data(workspace: Path, cfg: PipelineConfig, job_env: str) -> list[str]:
    """The `run --local` command for a workspace that holds the example data already (it
    is in place before the clock starts, as it is for the bare scripts)."""
    write_diabetes_csv(Workspace(workspace).path(cfg.data.input_uri))
    return [
        sys.executable, "-m", "pipeline.definition", "run", "--local", "--job-env", job_env,
        "--config", str(CONFIG), "--workspace", str(workspace),
    ]  # fmt: skip


def one_round(root: Path, server_uri: str, base: dict[str, str], job_env: str) -> dict[str, Any]:
    """Cold run, cached rerun and bare scripts in one job environment, in a fresh workspace."""
    cfg = load_config(CONFIG)
    tuning = cfg.tuning
    env = {**base, "MLFLOW_TRACKING_URI": server_uri, "PYTHONPATH": str(REPO)}
    command = workspace_with_data(root / "ws", cfg, job_env)
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
    environments, _ = job_environments(cfg, job_env)
    python = environments.for_bundle(code_bundle(cfg).files)
    trials = [{**static, **t} for t in trials]
    bare = bare_scripts(root / "bare", bare_env, cfg, trials, tuning.max_parallel_jobs, python)
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


def image_environment_build(cache: Path) -> tuple[float, float]:
    """Seconds to build the image's environment into an empty cache, and for a later
    command to find it there."""
    cfg = load_config(CONFIG)
    files = code_bundle(cfg).files
    start = time.perf_counter()
    ImageEnvironments("sklearn-1.4-2-constraints.txt", "scikit-learn 1.4-2", cache).for_bundle(files)
    built = time.perf_counter() - start
    start = time.perf_counter()
    ImageEnvironments("sklearn-1.4-2-constraints.txt", "scikit-learn 1.4-2", cache).for_bundle(files)
    return built, time.perf_counter() - start


def report(job_env: str, results: list[dict[str, Any]]) -> None:
    print(f"--job-env {job_env}:")
    for index, r in enumerate(results):
        print(
            f"  round {index + 1}: cold {r['cold']:5.2f} s (steps {r['executing']:5.2f} s: "
            + ", ".join(f"{name} {seconds:.2f}" for name, seconds in r["steps"].items())
            + f"), cached {r['cached']:4.2f} s, bare {r['bare']:5.2f} s, ratio {r['cold'] / r['bare']:.2f}x"
        )
    cold, cached, bare = (statistics.median(r[k] for r in results) for k in ("cold", "cached", "bare"))
    executing = statistics.median(r["executing"] for r in results)
    print(f"  median of {len(results)} rounds:")
    print(
        f"  cold run --local:        {cold:6.2f} s  (executing the steps: {executing:.2f} s; "
        f"start, render and exit: {cold - executing:.2f} s)"
    )
    print(f"  fully cached rerun:      {cached:6.2f} s  ({cached / cold:.0%} of cold; target < 10%)")
    print(f"  bare scripts, same work: {bare:6.2f} s")
    ratios = sorted(r["cold"] / r["bare"] for r in results)
    print(
        f"  cold / bare:             {cold / bare:6.2f}x (per round "
        + ", ".join(f"{x:.2f}x" for x in ratios)
        + ("; target <= 1.10x)" if job_env == "project" else ")")
    )


def main() -> int:
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MLOPS_"))}
    base["PATH"] = path_with_venv(base.get("PATH", ""))
    results: dict[str, list[dict[str, Any]]] = {"project": [], "image": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base["MLOPS_CACHE_DIR"] = str(root / "machine-cache")
        os.environ["MLOPS_CACHE_DIR"] = base["MLOPS_CACHE_DIR"]  # this process's environments too
        built, reused = image_environment_build(root / "machine-cache")
        boot = time.perf_counter()
        with TrackingServer(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts") as server:
            boot = time.perf_counter() - boot
            for job_env in results:  # an earlier workspace's run: the machine cache holds the definition
                one_round(root / f"warm-{job_env}", server.uri, base, job_env)
            for index in range(rounds):
                for job_env, measured in results.items():
                    measured.append(one_round(root / f"round-{index}-{job_env}", server.uri, base, job_env))
        own_cold, own_cached = own_server_runs(root / "own-server", base)
    first = results["project"][0]
    print(f"trials: {first['trials']}, {first['parallel']} in parallel")
    print(f"cached rerun statuses: {first['cached_statuses']}")
    print(f"MLflow server boot (once per run without --keep-services): {boot:.1f} s")
    print(
        f"image environment (scikit-learn 1.4-2): first build {built:.1f} s (uv's wheel cache as this machine "
        f"has it), found by a later command in {reused * 1000:.0f} ms"
    )
    for job_env, measured in results.items():
        report(job_env, measured)
    image = statistics.median(r["cold"] for r in results["image"])
    project = statistics.median(r["cold"] for r in results["project"])
    print(f"cold run, image / project environment: {image / project:.2f}x")
    print(
        f"without MLFLOW_TRACKING_URI (each run starts its own MLflow server; --job-env image): cold {own_cold:.2f} s, "
        f"fully cached rerun {own_cached:.2f} s ({own_cached / own_cold:.0%})"
    )
    return 0


def own_server_runs(root: Path, base: dict[str, str]) -> tuple[float, float]:
    """A user's first `run --local` and its rerun, each starting (and stopping) its own
    MLflow server: the first waits for the server's boot, the rerun should not."""
    env = {**base, "PYTHONPATH": str(REPO)}
    command = workspace_with_data(root / "ws", load_config(CONFIG), "image")
    return timed(command, env, root), timed(command, env, root)


if __name__ == "__main__":
    sys.exit(main())
