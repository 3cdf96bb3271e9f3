"""Reading and checking tabular data in the job scripts (CSV or Parquet, file or folder).

Two JSON files carry the data contract between the jobs, never command-line arguments
(SageMaker allows 256 characters per container argument, too few for a column list):

- `dataset_spec.json`, shipped in the code bundle beside the scripts and written by
  `pipeline/dataset_spec.py` from the config: what the raw table is and how to read it.
- `schema.json`, written by Preprocess into every split folder: the columns as found in
  the data (features in order, each one's kind: numeric, categorical or boolean), the
  task, the target and, for classification, the classes. Train and Evaluate read it from
  their input channel, so they agree with Preprocess by construction.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabular_model import BOOLEAN, BOOLEAN_SPELLINGS, CATEGORICAL, NUMERIC

__all__ = [
    "DataError",
    "DatasetSpec",
    "TableSchema",
    "classify_columns",
    "data_faults",
    "dataset_hash",
    "read_split",
    "read_table",
    "require_columns",
]

SPEC_FILE = "dataset_spec.json"
SCHEMA_FILE = "schema.json"
# Read as missing besides pandas' own spellings ("", NA, N/A, NaN, null, None, ...).
EXTRA_MISSING = ("?", "-", "missing", "MISSING", "none")
# pandas' own (source: pandas.read_csv, `na_values`: "By default the following values are
# interpreted as NaN"). Reading a file applies them; a request the model serves is read as
# text, so the schema hands them to the model too, or "NA" it trained as missing would be
# refused there as a number.
PANDAS_MISSING = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                  "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")  # fmt: skip
MIN_ROWS_PER_SPLIT = 10
MIN_ROWS_PER_CLASS = 3  # one in each split, so the split can be stratified


class DataError(ValueError):
    """The data does not fit the config (missing columns, no files, unreadable, faults)."""


@dataclass(frozen=True)
class DatasetSpec:
    """`dataset_spec.json`: the config's `data` and `training.task`, for Preprocess."""

    task: str
    target: str
    features: list[str] | None = None  # None: every column but the target
    column_types: dict[str, str] = field(default_factory=dict)
    format: str = "csv"
    separator: str = ","
    header: bool = True
    encoding: str = "utf-8"
    column_names: list[str] | None = None  # for a CSV without a header row
    missing_values: list[str] = field(default_factory=list)
    max_categories: int = 50
    positive_class: Any = None
    split: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "validation": 0.15, "test": 0.15})
    seed: int = 42

    @classmethod
    def load(cls, path: Path | str) -> DatasetSpec:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"cannot read the dataset spec {path}: {exc}") from exc

    @property
    def na_values(self) -> list[str]:
        return [*EXTRA_MISSING, *self.missing_values]

    @property
    def missing_spellings(self) -> list[str]:
        """Every spelling read as missing: pandas' own and `na_values` (what the model is told)."""
        return [*PANDAS_MISSING, *self.na_values]


@dataclass(frozen=True)
class TableSchema:
    """`schema.json`: what Preprocess found, for every later job."""

    task: str
    target: str
    features: list[str]
    column_types: dict[str, str]
    classes: list[Any] | None = None
    positive_class: Any = None
    na_values: list[str] = field(default_factory=lambda: list(EXTRA_MISSING))
    sources: dict[str, str] = field(default_factory=dict)  # split -> its S3 URI, for the runs that read it

    def write(self, folder: Path) -> None:
        (folder / SCHEMA_FILE).write_text(json.dumps(self.__dict__, indent=2, ensure_ascii=False, default=_plain))

    @classmethod
    def read(cls, folder: Path | str) -> TableSchema:
        path = Path(folder) / SCHEMA_FILE
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"cannot read {path} (written by the Preprocess step): {exc}") from exc

    @property
    def text_columns(self) -> list[str]:
        return [c for c in self.features if self.column_types[c] != NUMERIC]


def _plain(value: Any) -> Any:
    """numpy scalars (class labels) as JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _files(path: Path, fmt: str) -> list[Path]:
    if path.is_file():
        return [path]
    suffixes = {"csv": (".csv", ".txt", ".tsv"), "parquet": (".parquet", ".pq")}[fmt]
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise DataError(f"no {fmt} files under {path}")
    return files


def read_table(path: Path | str, spec: DatasetSpec | None = None, dtype: dict[str, Any] | None = None) -> pd.DataFrame:
    """All files of a folder (sorted, so the row order is stable) as one frame, read with
    the spec's CSV options; every usual spelling of a missing value becomes NaN."""
    spec = spec or DatasetSpec(task="regression", target="")
    path = Path(path)
    if not path.exists():
        raise DataError(f"input {path} does not exist")

    def read(file: Path) -> pd.DataFrame:
        if spec.format == "parquet":
            return pd.read_parquet(file)
        return pd.read_csv(
            file,
            sep=spec.separator,
            header=0 if spec.header else None,
            names=spec.column_names,
            encoding=spec.encoding,
            na_values=spec.na_values,
            dtype=dtype,
        )

    try:
        frames = [read(f) for f in _files(path, spec.format)]
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {spec.format} input {path}: {exc}") from exc
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame.columns = [str(c) for c in frame.columns]
    return frame


def require_columns(frame: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{what} column(s) {', '.join(missing)} not in the data (it has: {', '.join(map(str, frame.columns))})"
        )


def _is_boolean(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return True
    present = values.dropna()
    if present.empty or pd.api.types.is_numeric_dtype(present):
        return False
    return set(present.astype(str).str.strip().str.lower().unique()) <= set(BOOLEAN_SPELLINGS)


def classify_columns(frame: pd.DataFrame, features: list[str], declared: dict[str, str]) -> dict[str, str]:
    """Each feature's kind: the declared one, else numeric for numbers, boolean for
    true/false spellings, categorical for text. Whether text is usable as categories is
    `data_faults`' question, not this one's."""
    kinds = {}
    for column in features:
        values = frame[column]
        if column in declared:
            kinds[column] = declared[column]
        elif _is_boolean(values):
            kinds[column] = BOOLEAN
        elif pd.api.types.is_numeric_dtype(values):
            kinds[column] = NUMERIC
        else:
            kinds[column] = CATEGORICAL
    return kinds


def data_faults(frame: pd.DataFrame, spec: DatasetSpec, kinds: dict[str, str]) -> list[str]:
    """Every reason this table cannot train a model, each naming its columns; [] if none."""
    faults = []
    features = list(kinds)
    odd = [c for c in features if not _usable_dtype(frame[c])]
    if odd:
        faults.append(
            f"column(s) of a type the pipeline cannot use: {', '.join(f'{c} ({frame[c].dtype})' for c in odd)}"
        )
    empty = [c for c in features if frame[c].isna().all()]
    if empty:
        faults.append(f"all-missing column(s): {', '.join(empty)} (leave them out of data.features)")
    constant = [c for c in features if c not in empty and frame[c].nunique(dropna=True) == 1]
    if constant:
        faults.append(f"constant column(s): {', '.join(constant)} (one value in every row; leave them out)")
    for column, kind in kinds.items():
        if column in empty or column in odd:
            continue
        if kind == NUMERIC and not pd.api.types.is_numeric_dtype(frame[column]):
            bad = pd.to_numeric(frame[column], errors="coerce").isna() & frame[column].notna()
            if bad.any():
                example = frame[column][bad].iloc[0]
                faults.append(f"column {column} is numeric in data.column_types but holds {example!r}")
        if kind == CATEGORICAL and column not in spec.column_types:
            distinct = frame[column].nunique(dropna=True)
            if distinct > spec.max_categories:
                faults.append(
                    f"column {column} holds text with {distinct} distinct values (more than data.max_categories="
                    f"{spec.max_categories}): declare it in data.column_types as categorical, or leave it out"
                )
    faults += _target_faults(frame[spec.target], spec)
    return faults


def _usable_dtype(values: pd.Series) -> bool:
    """Numbers, booleans, text and pandas categories; not dates, durations or nested values."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return True
    if dtype.kind in "biuf":
        return True
    if dtype.kind == "O":
        present = values.dropna()
        return present.empty or bool(present.map(lambda v: isinstance(v, str | int | float | bool)).all())
    return False


def _target_faults(target: pd.Series, spec: DatasetSpec) -> list[str]:
    present = target.dropna()
    if present.empty:
        return [f"target column {spec.target} has no values"]
    if spec.task == "regression":
        if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
            example = present[pd.to_numeric(present, errors="coerce").isna()]
            shown = repr(example.iloc[0]) if len(example) else str(present.dtype)
            return [f"target column {spec.target} must be numeric for regression (it holds {shown})"]
        return []
    counts = present.value_counts()
    if len(counts) < 2:
        return [f"target column {spec.target} has one class ({counts.index[0]!r}): classification needs two or more"]
    if spec.task == "binary_classification" and len(counts) > 2:
        shown = ", ".join(map(repr, counts.index[:5]))
        return [f"target column {spec.target} has {len(counts)} classes ({shown}, ...): use multiclass_classification"]
    rare = counts[counts < MIN_ROWS_PER_CLASS]
    if len(rare):
        shown = ", ".join(f"{k!r} ({v} rows)" for k, v in rare.items())
        return [f"target class(es) with fewer than {MIN_ROWS_PER_CLASS} rows cannot be split three ways: {shown}"]
    return []


def split_size_faults(n_rows: int, split: dict[str, float]) -> list[str]:
    sizes = split_sizes(n_rows, split)
    small = {k: v for k, v in sizes.items() if v < MIN_ROWS_PER_SPLIT}
    if not small:
        return []
    shown = ", ".join(f"{k} {v}" for k, v in small.items())
    return [f"{n_rows} rows give too few rows per split ({shown}; each split needs at least {MIN_ROWS_PER_SPLIT})"]


def split_sizes(n_rows: int, split: dict[str, float]) -> dict[str, int]:
    n_train = round(n_rows * split["train"])
    n_validation = round(n_rows * split["validation"])
    return {"train": n_train, "validation": n_validation, "test": n_rows - n_train - n_validation}


def read_split(folder: Path | str, schema: TableSchema) -> tuple[pd.DataFrame, pd.Series]:
    """A split written by Preprocess: features with their kinds restored, and the target."""
    dtype = {c: str for c in schema.text_columns}
    frame = read_table(folder, DatasetSpec(task=schema.task, target=schema.target), dtype=dtype)
    require_columns(frame, [schema.target, *schema.features], "split")
    return frame[schema.features], frame[schema.target]


def dataset_hash(frame: pd.DataFrame) -> str:
    """Content hash of the data as the pipeline sees it (column order and values)."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    return digest.hexdigest()
