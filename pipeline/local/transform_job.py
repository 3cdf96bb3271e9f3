"""A batch transform job, run locally as SageMaker's scikit-learn container runs one.

Started by `LocalJobRunner.transform` as `python transform_job.py SPEC.json` in the job's
environment. The model's own inference code is loaded from its source directory
(`SAGEMAKER_PROGRAM` in `SAGEMAKER_SUBMIT_DIRECTORY`), `model_fn` once, then per request
`input_fn`, `predict_fn`, `output_fn` (source: the SageMaker scikit-learn container's
serving contract; SageMaker Developer Guide, "Batch transform": SplitType, BatchStrategy,
MaxPayloadInMB, AssembleWith, JoinSource). Each input file gives `<file>.out` under the
output folder: `SplitType: Line` cuts the file into records, `MultiRecord` sends as many
as fit in `MaxPayloadInMB` per request (`SingleRecord` one), and `AssembleWith: Line`
writes each answer on its own line(s). With `JoinSource: Input`, each output line is the
input record, a comma, then its prediction (CSV). A request that fails is retried a record
at a time to name the line that failed; the job then exits 1 with it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def load_program(source_dir: Path, program: str) -> Any:
    sys.path.insert(0, str(source_dir))  # the program imports its neighbours
    spec = importlib.util.spec_from_file_location("inference_program", source_dir / program)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"{program} is not in {source_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def batches(lines: list[bytes], strategy: str, max_bytes: int) -> Iterator[tuple[int, list[bytes]]]:
    """(index of the first record, records) per request, each at most `max_bytes` with
    its newlines (a single record over it is sent alone, as SageMaker would try it)."""
    if strategy == "SingleRecord":
        yield from ((i, [line]) for i, line in enumerate(lines))
        return
    start, size = 0, 0
    for i, line in enumerate(lines):
        if i > start and size + len(line) + 1 > max_bytes:
            yield start, lines[start:i]
            start, size = i, 0
        size += len(line) + 1
    if start < len(lines):
        yield start, lines[start:]


def _answer(program: Any, model: Any, body: bytes, content_type: str, accept: str) -> str:
    data = program.input_fn(body, content_type)
    prediction = program.predict_fn(data, model)
    output = program.output_fn(prediction, accept)
    text = output[0] if isinstance(output, tuple) else output
    return text.decode() if isinstance(text, bytes) else str(text)


def _failing_line(program: Any, model: Any, records: list[bytes], spec: dict[str, Any], first: int) -> str:
    for offset, record in enumerate(records):
        try:
            _answer(program, model, record, spec["content_type"], spec["accept"])
        except Exception as exc:  # the model's own code: anything can come out
            return f"line {first + offset + 1}: {type(exc).__name__}: {exc}"
    return f"lines {first + 1}-{first + len(records)} (together; each alone succeeds)"


def transform_file(program: Any, model: Any, source: Path, target: Path, spec: dict[str, Any]) -> int:
    """Score one input file into `target`; returns the records scored. Raises
    RuntimeError naming the file and the line that failed."""
    lines = (
        [line for line in source.read_bytes().split(b"\n") if line.strip()]
        if spec["split"] == "Line"
        else [source.read_bytes()]
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("w") as out:
        for first, records in batches(lines, spec["strategy"], spec["max_payload_mb"] * MB):
            body = b"\n".join(records)
            try:
                answer = _answer(program, model, body, spec["content_type"], spec["accept"])
            except Exception:  # find the line, for the message
                where = _failing_line(program, model, records, spec, first)
                raise RuntimeError(f"{source.name}: {where}") from None
            if spec["join_input"]:
                predicted = answer.rstrip("\n").split("\n")
                inputs = [r.decode() for r in records]
                if len(predicted) == len(inputs) - 1 and first == 0:  # a header row: its column is named
                    predicted = ["prediction", *predicted]
                if len(predicted) != len(inputs):
                    raise RuntimeError(f"{source.name}: {len(inputs)} records gave {len(predicted)} answers to join")
                answer = "\n".join(f"{i},{p}" for i, p in zip(inputs, predicted, strict=True)) + "\n"
            out.write(answer if answer.endswith("\n") else answer + "\n")
    partial.replace(target)
    return len(lines)


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
        except RuntimeError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
    print(f"transformed {total} records from {len(files)} file(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
