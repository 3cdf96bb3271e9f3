"""`python -m pipeline.definition` ends without tearing down the interpreter's modules,
but with everything a normal exit does that a user could notice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PROGRAM = """
import atexit, sys, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ThreadPoolExecutor(2).submit(time.sleep, 0.3)  # never shut down: a normal exit waits for it
atexit.register(lambda: Path(sys.argv[1]).write_text("exit handlers ran"))
print("buffered output", end="")
from pipeline.cli import exit_without_teardown
exit_without_teardown(3)
"""


def test_exit_keeps_the_code_output_exit_handlers_and_waits_for_threads(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(marker)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout == "buffered output"
    assert marker.read_text() == "exit handlers ran"
