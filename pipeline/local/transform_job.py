"""A batch transform job, run locally as SageMaker's scikit-learn container runs one.

Started by `LocalJobRunner.transform` as `python transform_job.py SPEC.json` in the job's
environment. The model's own inference code is loaded from its source directory
(`SAGEMAKER_PROGRAM` in `SAGEMAKER_SUBMIT_DIRECTORY`), `model_fn` once, then per request
`input_fn`, `predict_fn`, `output_fn` (source: the SageMaker scikit-learn container's
serving contract; SageMaker Developer Guide, "Batch transform": SplitType, BatchStrategy,
MaxPayloadInMB, AssembleWith, JoinSource). Each input file gives `<file>.out` in the
output folder: `SplitType: Line` cuts the file at every newline into records (not
CSV-aware, as SageMaker's), `MultiRecord` sends as many whole records as fit in
`MaxPayloadInMB` per request (`SingleRecord` one), and a record larger than that fails the
job, as on SageMaker. `AssembleWith: Line` writes each answer on its own line, and each
request must answer every record it carried, one line each, or the job fails rather than
shift answers against their records. With `JoinSource: Input`, each output line is the
input record, a comma, then its answer (CSV). A request that fails is bisected (log2 of
its records in model calls) to name the record that fails (record k is line k of the file
scored), by file; the job then exits 1 with it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MB = 1024 * 1024


class TransformFailed(Exception):
    """A file could not be scored; the message names the file (and the line)."""


def load_program(source_dir: Path, program: str) -> Any:
    sys.path.insert(0, str(source_dir))  # the program imports its neighbours
    spec = importlib.util.spec_from_file_location("inference_program", source_dir / program)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{program} is not in {source_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batches(data: bytes, strategy: str, max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line index of the first record, request body) per request: whole lines, each body
    at most `max_bytes`. Cut at newlines with `bytes.rfind`, so the cost grows with the
    requests, not the lines. Raises ValueError naming a line longer than `max_bytes`."""
    if data.endswith(b"\n"):
        data = data[:-1]  # the last record's newline; any blank line before it is a record
    if not data:
        return
    if strategy == "SingleRecord":
        for i, line in enumerate(data.split(b"\n")):
            if len(line) > max_bytes:
                raise ValueError(f"record {i + 1} is {len(line)} bytes, more than MaxPayloadInMB allows ({max_bytes})")
            yield i, line
        return
    start, line = 0, 0
    while start <= len(data):
        end = len(data) if len(data) - start <= max_bytes else data.rfind(b"\n", start, start + max_bytes + 1)
        if end < start:  # one line longer than a request may be: SageMaker fails the job
            longest = data.find(b"\n", start)
            size = (len(data) if longest < 0 else longest) - start
            raise ValueError(f"record {line + 1} is {size} bytes, more than MaxPayloadInMB allows ({max_bytes})")
        body = data[start:end]
        yield line, body
        line += body.count(b"\n") + 1
        start = end + 1


def _answer(program: Any, model: Any, body: bytes, content_type: str, accept: str) -> str:
    """The request's answer, one line a record, ending in a newline ("" for none)."""
    data = program.input_fn(body, content_type)
    prediction = program.predict_fn(data, model)
    output = program.output_fn(prediction, accept)
    text = output[0] if isinstance(output, tuple) else output
    text = text.decode() if isinstance(text, bytes) else str(text)
    return text if not text or text.endswith("\n") else text + "\n"


def _failing_record(program: Any, model: Any, records: list[bytes], spec: dict[str, Any], first: int) -> str:
    """Bisect the records of a failed request down to one that fails alone: log2 of the
    records in model calls, where one call per record took minutes for a 6 MB request."""
    low, high, error = 0, len(records), None
    while high - low > 1:
        middle = (low + high) // 2
        try:
            _answer(program, model, b"\n".join(records[low:middle]), spec["content_type"], spec["accept"])
        except Exception:  # the model's own code: anything can come out
            high = middle
        else:
            low = middle
    try:
        _answer(program, model, records[low], spec["content_type"], spec["accept"])
    except Exception as exc:
        error = exc
    if error is None:
        return f"records {first + 1}-{first + len(records)} fail together, and each alone succeeds"
    record = records[low].decode(errors="replace")
    shown = record if len(record) <= 200 else record[:200] + "..."
    return f"record {first + low + 1} ({shown!r}): {type(error).__name__}: {error}"


def _joined(body: bytes, answer: str) -> str:
    """Each input record, a comma, then its answer (`JoinSource: Input`, CSV)."""
    inputs, predicted = body.decode().split("\n"), answer[:-1].split("\n")
    return "".join(f"{i},{p}\n" for i, p in zip(inputs, predicted, strict=True))


def transform_file(program: Any, model: Any, source: Path, target: Path, spec: dict[str, Any]) -> int:
    """Score one input file into `target`; returns the records scored. Raises
    TransformFailed naming the file and the line that failed; no partial `target` is left."""
    data = source.read_bytes()
    if b"\r" in data:  # a scan is cheaper than a copy of the file
        data = data.replace(b"\r\n", b"\n")
    split = spec["split"] == "Line"
    max_bytes = spec["max_payload_mb"] * MB
    requests = batches(data, spec["strategy"], max_bytes) if split else iter([(0, data)])
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    records = 0
    try:
        with partial.open("w") as out:
            for first, body in requests:
                count = body.count(b"\n") + 1 if split else 1
                try:
                    answer = _answer(program, model, body, spec["content_type"], spec["accept"])
                except Exception:  # find the record, for the message
                    where = _failing_record(program, model, body.split(b"\n"), spec, first) if split else "the file"
                    raise TransformFailed(f"{source.name}: {where}") from None
                answered = answer.count("\n")
                if split and answered != count:
                    raise TransformFailed(
                        f"{source.name}: records {first + 1}-{first + count}: {count} records gave {answered} "
                        f"answer lines (Accept {spec['accept']}); each record needs one"
                    )
                out.write(_joined(body, answer) if spec["join_input"] else answer)
                records += count
    except ValueError as exc:  # a record larger than a request may be
        partial.unlink(missing_ok=True)
        raise TransformFailed(f"{source.name}: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return records


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    program = load_program(Path(spec["source_dir"]), spec["program"])
    model = program.model_fn(spec["model_dir"])
    input_dir, output_dir = Path(spec["input"]), Path(spec["output"])
    files = [input_dir] if input_dir.is_file() else sorted(p for p in input_dir.rglob("*") if p.is_file())
    files = [f for f in files if not f.name.startswith(".")]
    if not files:
        print(f"ERROR: no input under {input_dir}", file=sys.stderr)
        return 1
    total = 0
    for source in files:
        relative = source.name if input_dir.is_file() else str(source.relative_to(input_dir))
        try:
            total += transform_file(program, model, source, output_dir / f"{relative}.out", spec)
        except TransformFailed as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
    print(f"transformed {total} records from {len(files)} file(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
