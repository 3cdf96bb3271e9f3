"""The job scripts' command lines as the benchmarks start them bare (no orchestration)."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.code_bundle import SCRIPTS_DIR

__all__ = ["FEATURES", "preprocess_command", "train_command"]

FEATURES = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6"


def preprocess_command(raw: Path, out: Path) -> list[str]:
    return [
        sys.executable, str(SCRIPTS_DIR / "preprocess.py"), "--input", str(raw), "--output-dir", str(out),
        "--target", "target", "--features", FEATURES,
        "--train-ratio", "0.7", "--validation-ratio", "0.15", "--test-ratio", "0.15",
    ]  # fmt: skip


def train_command(hyperparameters: dict[str, object]) -> list[str]:
    command = [sys.executable, str(SCRIPTS_DIR / "train.py"), "--target", "target", "--features", FEATURES]
    for key, value in hyperparameters.items():
        command += [f"--{key}", str(value)]
    return command
