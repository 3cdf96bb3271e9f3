"""The Python the job scripts' tests run them in: the environment local mode builds from the
SageMaker scikit-learn 1.4-2 image's pins and the scripts' requirements
(pipeline/local/job_environment.py), so the scripts are tested with the libraries they meet
on SageMaker (numpy 2.1.0, scikit-learn 1.4.2, pandas 2.3.2, pyarrow 17.0.0), not this
project's. `MLOPS_TEST_JOB_ENV=project` runs them in this project's environment instead.

A model those jobs train is loaded in the same environment (`in_job_environment`): a
pickled scikit-learn model loads only under the minor version that trained it.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from typing import Any

from pipeline.config import PipelineConfig
from pipeline.config_loader import load_config
from pipeline.local.job_environment import JobEnvironment, serving_environment
from tests.conftest import DEFAULT_CONFIG

__all__ = ["in_job_environment", "job_environment", "job_environment_of", "predictions"]


def job_environment_of(cfg: PipelineConfig) -> JobEnvironment:
    """The environment a config's jobs run in locally (built once per machine, then reused)."""
    return serving_environment(cfg, os.environ.get("MLOPS_TEST_JOB_ENV", "image"))


@functools.cache
def job_environment() -> JobEnvironment:
    """The default config's job environment."""
    return job_environment_of(load_config(DEFAULT_CONFIG))


def in_job_environment(program: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """Run `program` (Python source) in the job environment with `args` as sys.argv[1:];
    its last line of output, read as JSON. A failure raises with the program's stderr."""
    done = subprocess.run(
        [str(job_environment().python), "-c", program, *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})},
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"the program failed in {job_environment().label}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


_PREDICT_CSV = """
import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps([str(v) for v in model.predict(pd.read_csv(sys.argv[2]))]))
"""


def predictions(model_uri: str, csv: str, tracking_uri: str = "") -> list[str]:
    """What the MLflow model at `model_uri` answers for the rows of the CSV file `csv` as
    pandas reads them, each as `str()` writes it, asked in the job environment."""
    env = {"MLFLOW_TRACKING_URI": tracking_uri} if tracking_uri else {}
    return list(in_job_environment(_PREDICT_CSV, model_uri, csv, env=env))
