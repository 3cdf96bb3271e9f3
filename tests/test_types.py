"""The bridge's edges are held to their declared interfaces (mlflow_bridge/interfaces.py)
by mypy, not matched by method name at run time: the bridge and local mode's deployer
type-check, and a look-alike deployer does not."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CHECKED = ["mlflow_bridge", "pipeline/local/serving.py", "pipeline/local/approval.py"]
LOOK_ALIKE = "tests/typing_cases/deployer_without_package.py"


def test_the_edges_implement_their_interfaces_and_a_look_alike_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", *CHECKED, LOOK_ALIKE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert errors and all(line.startswith(LOOK_ALIKE) for line in errors), "\n".join(errors)
    assert any('expected "ModelDeployer | None"' in line for line in errors), "\n".join(errors)
