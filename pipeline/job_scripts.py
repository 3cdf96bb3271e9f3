"""The job scripts (`pipeline/steps/scripts/`), and their modules loaded by file where the
builder and local mode share a rule with them (how a hyperparameter value is read, when a
model may be loaded), so each rule is written once, in the code the jobs run.

The scripts are not a package of this project: on SageMaker they are the job's working
directory and import one another by bare name.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType

__all__ = ["SCRIPTS_DIR", "script_module"]

SCRIPTS_DIR = Path(__file__).parent / "steps" / "scripts"


@functools.cache
def script_module(name: str) -> ModuleType:
    """`SCRIPTS_DIR/<name>.py` as a module (loaded once). It must import nothing the
    builder lacks: only the standard library, or libraries it imports lazily."""
    spec = importlib.util.spec_from_file_location(f"job_scripts.{name}", SCRIPTS_DIR / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no job script {name}.py in {SCRIPTS_DIR}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
