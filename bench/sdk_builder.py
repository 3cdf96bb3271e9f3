"""The builder on SageMaker Python SDK v2 and v3 (issue #22), measured in one run.

Builds two environments side by side with uv, from the same interpreter and the same wheel
cache: the builder's own requirements (pyproject.toml's dependencies and scikit-learn, which
the estimator check imports) plus
  - v2: `sagemaker==2.257.7`, and the builder as it was on v2 (commit V2_BUILDER, taken out
    of this repository's history with `git archive`);
  - v3: the four v3 packages pyproject.toml pins, and the builder as it is now.
It prints for each: the packages installed and their size on disk; the import time of the
SDK's pipeline and step classes (a fresh process each time); the wall time of
`python -m pipeline.definition render` (a fresh process, which includes that import) and of
a render in an already-warm process; and the v3/v2 ratios. Medians of BENCH_ROUNDS
(default 5) rounds, the two alternating.

    .venv/bin/python bench/sdk_builder.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
V2_BUILDER = "1bdee9c"  # the last commit whose builder is on SDK v2 (its definitions are the fixtures)
V2_SDK = ["sagemaker==2.257.7"]

IMPORTS = {
    "v2": "from sagemaker.workflow.pipeline import Pipeline; "
    "from sagemaker.workflow.steps import ProcessingStep, TrainingStep, TuningStep",
    "v3": "from sagemaker.mlops.workflow.pipeline import Pipeline; "
    "from sagemaker.mlops.workflow.steps import ProcessingStep, TrainingStep, TuningStep",
}
WARM_RENDER = """
import time
from pipeline.config_loader import load_config
from pipeline.definition import render_definition
cfg = load_config("config/pipeline.yaml")
render_definition(cfg)
start = time.perf_counter()
for _ in range(5):
    render_definition(cfg)
print((time.perf_counter() - start) / 5)
"""


def uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def project_requirements() -> tuple[list[str], list[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + ["scikit-learn>=1.4"], project["optional-dependencies"]["sagemaker"]


def build_environment(target: Path, requirements: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    subprocess.run([uv(), "venv", "--quiet", "--python", sys.executable, str(target)], check=True)
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--python", str(target / "bin" / "python"), *requirements],
        check=True,
        env={**os.environ, "UV_NO_PROGRESS": "1"},
    )
    seconds = time.perf_counter() - start
    listed = subprocess.run(
        [uv(), "pip", "list", "--python", str(target / "bin" / "python")], capture_output=True, text=True, check=True
    ).stdout
    return seconds, len(listed.splitlines()) - 2  # header and rule


def size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def timed(command: list[str], cwd: Path, region: str | None = None) -> float:
    """Wall seconds of a fresh process. No AWS settings from the shell: a render needs none;
    a bare import of v3's pipeline classes needs a region (`region`) or raises NoRegionError."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONDONTWRITEBYTECODE"] = "0"
    if region:
        env["AWS_DEFAULT_REGION"] = region
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    base, v3_sdk = project_requirements()
    with tempfile.TemporaryDirectory(prefix="sdk-bench-") as tmp:
        work = Path(tmp)
        trees = {"v2": work / "builder-v2", "v3": REPO}
        trees["v2"].mkdir()
        tree = ["pipeline", "mlflow_bridge", "config"]
        archive = subprocess.run(["git", "archive", V2_BUILDER, *tree], cwd=REPO, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(trees["v2"])], input=archive, check=True)
        envs, rows = {}, {}
        for name, sdk in (("v2", V2_SDK), ("v3", v3_sdk)):
            envs[name] = work / f"env-{name}"
            seconds, packages = build_environment(envs[name], base + sdk)
            site = next((envs[name] / "lib").glob("python3*/site-packages"))
            rows[name] = {"install_s": seconds, "packages": packages, "size_mb": size_mb(site)}
            print(f"{name}: {' '.join(sdk)}: {packages} packages, {rows[name]['size_mb']:.0f} MB, installed in "
                  f"{seconds:.0f} s (uv, this machine's wheel cache)")  # fmt: skip
        samples: dict[str, dict[str, list[float]]] = {n: {"import": [], "render": [], "warm": []} for n in envs}
        for _ in range(rounds):
            for name, env in envs.items():
                python = str(env / "bin" / "python")
                samples[name]["import"].append(timed([python, "-c", IMPORTS[name]], trees[name], "us-east-1"))
                samples[name]["render"].append(timed([python, "-m", "pipeline.definition", "render"], trees[name]))
                warm = subprocess.run([python, "-c", WARM_RENDER], cwd=trees[name], capture_output=True, text=True)
                samples[name]["warm"].append(float(warm.stdout.strip().splitlines()[-1]))
        print(f"\nmedians of {rounds} rounds (fresh processes; the warm render is one process rendering again)")
        print(f"{'':4} {'import SDK classes':>20} {'render (cold)':>15} {'render (warm)':>15}")
        medians = {n: {k: statistics.median(v) for k, v in s.items()} for n, s in samples.items()}
        for name in envs:
            m = medians[name]
            print(f"{name:4} {m['import']:>19.2f}s {m['render']:>14.2f}s {m['warm']:>14.3f}s")
        v2, v3 = medians["v2"], medians["v3"]
        print(
            f"\nv3/v2: install size {rows['v3']['size_mb'] / rows['v2']['size_mb']:.2f}x, "
            f"packages {rows['v3']['packages']}/{rows['v2']['packages']}, import {v3['import'] / v2['import']:.2f}x, "
            f"render cold {v3['render'] / v2['render']:.2f}x, warm {v3['warm'] / v2['warm']:.2f}x"
        )


if __name__ == "__main__":
    main()
