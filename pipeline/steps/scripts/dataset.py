"""Reading and checking tabular data in the job scripts (CSV or Parquet, file or folder)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

__all__ = ["DataError", "dataset_hash", "features_and_target", "read_table", "require_columns"]


class DataError(ValueError):
    """The data does not fit the config (missing columns, no files, unreadable)."""


def _files(path: Path, fmt: str) -> list[Path]:
    if path.is_file():
        return [path]
    suffixes = {"csv": (".csv",), "parquet": (".parquet", ".pq")}[fmt]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise DataError(f"no {fmt} files under {path}")
    return files


def read_table(path: Path | str, fmt: str = "csv") -> pd.DataFrame:
    """All files of a folder (sorted, so the row order is stable) as one frame."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"input {path} does not exist")
    reader = pd.read_csv if fmt == "csv" else pd.read_parquet
    try:
        frames = [reader(f) for f in _files(path, fmt)]
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read {fmt} input {path}: {exc}") from exc
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what} column(s) {', '.join(missing)} not in the data (it has: {', '.join(map(str, frame.columns))})"
        )


def features_and_target(frame: pd.DataFrame, features: list[str], target: str) -> tuple[pd.DataFrame, pd.Series]:
    require_columns(frame, [target], "target")
    require_columns(frame, features, "feature")
    return frame[features], frame[target]


def dataset_hash(frame: pd.DataFrame) -> str:
    """Content hash of the data as the pipeline sees it (column order and values)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    return digest.hexdigest()
