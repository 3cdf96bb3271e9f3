"""A batch file read as SageMaker's batch transform would cut it, checked, and written as
the records the Transform step scores.

Batch transform with `SplitType: Line` cuts a file at every newline and is not CSV-aware
(SageMaker Developer Guide, "Batch transform"; "Run a batch transform job"): a header, a
blank line or a newline inside quotes each become a record of their own, and only the
first request of a file carries its header. So a file whose header lists the features in
another order than training would be read by name in its first request only, and every
answer after a blank line would belong to the row before it. The drift check therefore
reads each batch file here, by the config's `data.csv` options (separator, encoding,
header, column names) or as Parquet, refuses what would misalign (naming the file and the
line), maps the columns by name, and writes each file's records in the training feature
order, as CSV without a header, one record per line: exactly what the drift statistics
saw, and what Transform then scores. Output record k of `<file>.out` is record k of the
file.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from dataset import DataError, DatasetSpec

PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class BatchFile:
    """One input file: where it is relative to the batch, and its records (text, NaN for an
    empty field) with the model's features as columns, in training order."""

    relative: str
    records: pd.DataFrame


def batch_files(folder: Path) -> list[Path]:
    """Every file of the batch, sorted (hidden files skipped, as the transform skips them)."""
    if folder.is_file():
        return [folder]
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"the batch {folder} holds no file")
    return files


def column_faults(columns: list[str], features: list[str]) -> str:
    """'' when `columns` name every feature once and nothing else (in any order); else what
    lacks and what is unknown, both named."""
    faults = []
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    missing = [f for f in features if f not in columns]
    unknown = [c for c in columns if c not in features]
    if missing:
        faults.append(f"lacks feature(s) {', '.join(missing)}")
    if unknown:
        faults.append(f"names unknown column(s) {', '.join(unknown)}")
    if duplicated:
        faults.append(f"names {', '.join(duplicated)} more than once")
    return " and ".join(faults)


_BLANK = (
    "is blank; SageMaker's Line split sends it as a record of its own, which shifts every later answer "
    "against its row: remove blank lines"
)
_RUNS_ON = (
    "opens a quoted value that runs on into the next line; SageMaker's Line split is not CSV-aware and "
    "would cut the record there: keep each record on one line"
)


def _line_bounds(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(newline offsets, line starts, line lengths) of UTF-8 bytes, in bytes: ASCII bytes
    never occur inside a multi-byte character, so megabytes are cut in milliseconds without
    making a string per line."""
    newlines = np.flatnonzero(raw == 10)
    starts = np.concatenate([[0], newlines + 1])
    return newlines, starts, np.concatenate([newlines, [len(raw)]]) - starts


def _line_shape(encoded: bytes, separator: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(separators per line, quotes per line, line starts, line lengths) of a UTF-8 body."""
    raw = np.frombuffer(encoded, dtype=np.uint8)
    newlines, starts, lengths = _line_bounds(raw)

    def per_line(byte: int) -> np.ndarray:
        return np.bincount(np.searchsorted(newlines, np.flatnonzero(raw == byte)), minlength=len(starts))

    if len(separator) == 1 and ord(separator) < 128:
        seps = per_line(ord(separator))
    else:
        lines = pd.Series(encoded.decode("utf-8").split("\n"), dtype=object)
        seps = lines.str.count(re.escape(separator)).to_numpy()
    return seps, per_line(ord('"')), starts, lengths


def ragged_line(body: str, n_fields: int, separator: str = ",") -> str:
    """'' when every line of `body` (no final newline) is one record of `n_fields` fields;
    else which line is not, and why (1-based). Lines are counted vectorised; only a line
    whose separators do not add up, or that holds a quote, is looked at, and a quoted one is
    parsed as CSV (a quoted separator is no field boundary)."""
    if not body:
        return ""
    encoded = body.encode("utf-8")
    seps, quotes, starts, lengths = _line_shape(encoded, separator)
    suspects = np.flatnonzero((seps + 1 != n_fields) | (lengths == 0) | (quotes > 0))
    for index in suspects:
        line = encoded[starts[index] : starts[index] + lengths[index]].decode("utf-8")
        if not line.strip():
            return f"{index + 1} {_BLANK}"
        fields = int(seps[index]) + 1
        if '"' in line:
            try:
                fields = len(next(csv.reader([line], delimiter=separator, strict=True)))
            except csv.Error:
                return f"{index + 1} {_RUNS_ON}"
            if fields == n_fields:
                continue
        return f"{index + 1} has {fields} fields, {n_fields} expected"
    return ""


def _decoded(path: Path, encoding: str, name: str) -> str:
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{name}: line {line}, byte {exc.start} is not {encoding} text (set data.csv.encoding to the file's "
            "encoding)"
        ) from None
    except LookupError:
        raise DataError(f"{name}: unknown encoding {encoding!r} (data.csv.encoding)") from None
    return text.replace("\r\n", "\n")


def _read_csv(path: Path, spec: DatasetSpec, features: list[str], name: str) -> pd.DataFrame:
    text = _decoded(path, spec.encoding, name)
    if not text.strip():
        raise DataError(f"{name}: the file is empty")
    body = text[:-1] if text.endswith("\n") else text  # one final newline ends the last record
    try:
        width = len(next(csv.reader([body.split("\n", 1)[0]], delimiter=spec.separator, strict=True)))
    except csv.Error:
        raise DataError(f"{name}: line 1 {_RUNS_ON}") from None
    fault = ragged_line(body, width, spec.separator)  # before pandas, which would skip or merge such lines
    if fault:
        raise DataError(f"{name}: line {fault}")
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=spec.separator, header=None, dtype=object, keep_default_na=False, na_values=[""],
            skip_blank_lines=False,
        )  # fmt: skip
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{name}: {str(exc).strip()}") from None
    if spec.header:
        names, frame, what = [str(v).strip() for v in frame.iloc[0]], frame.iloc[1:], "its header (line 1)"
    else:
        names = [c for c in spec.column_names if c != spec.target] if spec.column_names else list(features)
        what = "data.csv.column_names" if spec.column_names else "the training feature order (data.csv.header: false)"
        if frame.shape[1] != len(names):
            raise DataError(f"{name}: {frame.shape[1]} fields a line, {what} has {len(names)} ({', '.join(names)})")
    fault = column_faults(names, features)
    if fault:
        raise DataError(f"{name}: {what} {fault}")
    frame.columns = names
    return frame


def _read_parquet(path: Path, features: list[str], name: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{name}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    names = [str(c) for c in frame.columns]
    fault = column_faults(names, features)
    if fault:
        raise DataError(f"{name}: its columns {fault}")
    frame.columns = names
    text = frame.astype(object).where(frame.notna(), None).map(lambda v: None if v is None else str(v))
    for column in text.columns:
        has_newline = text[column].str.contains("\n", regex=False, na=False).to_numpy().nonzero()[0]
        if len(has_newline):
            raise DataError(f"{name}: row {has_newline[0] + 1}, column {column}: a value holds a newline")
    return text.astype(object).where(text.notna(), float("nan"))


def read_batch_file(path: Path, spec: DatasetSpec, features: list[str], name: str = "") -> pd.DataFrame:
    """The file's records with `features` as columns (text; NaN where a field is empty).
    Raises DataError naming the file (`name`, default its path) and the line for an empty,
    undecodable, ragged or misaligning file, or columns that are not exactly the features."""
    name = name or str(path)
    parquet = path.suffix.lower() in PARQUET_SUFFIXES
    frame = _read_parquet(path, features, name) if parquet else _read_csv(path, spec, features, name)
    return frame[features].reset_index(drop=True)


def read_batch(folder: Path, spec: DatasetSpec, features: list[str]) -> list[BatchFile]:
    """Every file of the batch, read and checked by `read_batch_file`, named in messages by
    its path within the batch (what the user uploaded, not the container's path)."""
    root = folder if folder.is_dir() else folder.parent
    named = [(f, str(f.relative_to(root))) for f in batch_files(folder)]
    return [BatchFile(name, read_batch_file(f, spec, features, name)) for f, name in named]


def write_records(batch: BatchFile, folder: Path, max_record_bytes: int) -> Path:
    """The file's records as Transform scores them: CSV, no header, the features in training
    order, one record per line, under the file's own relative name (so its answers are
    `<name>.out`). Raises DataError naming the record that exceeds `max_record_bytes`
    (MaxPayloadInMB: SageMaker fails a job whose single record is larger)."""
    encoded = batch.records.to_csv(header=False, index=False, lineterminator="\n", na_rep="").encode("utf-8")
    _, _, lengths = _line_bounds(np.frombuffer(encoded[:-1], dtype=np.uint8))
    too_long = np.flatnonzero(lengths > max_record_bytes) if encoded else []
    if len(too_long):
        record = int(too_long[0])
        raise DataError(
            f"{batch.relative}: record {record + 1} is {int(lengths[record])} bytes, more than a request may "
            f"carry ({max_record_bytes} bytes, batch.max_payload_mb)"
        )
    target = folder / batch.relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(encoded)
    return target
