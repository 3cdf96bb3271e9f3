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


def batches(data: bytes, strategy: str, max_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line index of the first record, request body) per request: whole lines, each body
    at most `max_bytes` (a single longer line is sent alone, as SageMaker would try it).
    Cut at newlines with `bytes.rfind`, so the cost grows with the requests, not the lines."""
    data = data.rstrip(b"\n")
    if not data:
        return
    if strategy == "SingleRecord":
        for i, line in enumerate(data.split(b"\n")):
            yield i, line
        return
    start, line = 0, 0
    while start < len(data):
        end = len(data) if len(data) - start <= max_bytes else data.rfind(b"\n", start, start + max_bytes + 1)
        if end <= start:  # one line longer than a request may be: alone
            end = data.find(b"\n", start)
            end = len(data) if end < 0 else end
        body = data[start:end]
        yield line, body
        line += body.count(b"\n") + 1
        start = end + 1


def _answer(program: Any, model: Any, body: bytes, content_type: str, accept: str) -> str:
    data = program.input_fn(body, content_type)
    prediction = program.predict_fn(data, model)
    output = program.output_fn(prediction, accept)
    text = output[0] if isinstance(output, tuple) else output
    return text.decode() if isinstance(text, bytes) else str(text)


def _failing_line(program: Any, model: Any, body: bytes, spec: dict[str, Any], first: int) -> str:
    records = body.split(b"\n")
    for offset, record in enumerate(records):
        try:
            _answer(program, model, record, spec["content_type"], spec["accept"])
        except Exception as exc:  # the model's own code: anything can come out
            return f"line {first + offset + 1}: {type(exc).__name__}: {exc}"
    return f"lines {first + 1}-{first + len(records)} (together; each alone succeeds)"


def _joined(file_name: str, body: bytes, answer: str, first: int) -> str:
    """Each input record, a comma, then its answer (`JoinSource: Input`, CSV)."""
    inputs = body.decode().split("\n")
    predicted = answer.rstrip("\n").split("\n")
    if len(predicted) == len(inputs) - 1 and first == 0:  # a header row: its column is named
        predicted = ["prediction", *predicted]
    if len(predicted) != len(inputs):
        raise RuntimeError(f"{file_name}: {len(inputs)} records gave {len(predicted)} answers to join")
    return "\n".join(f"{i},{p}" for i, p in zip(inputs, predicted, strict=True)) + "\n"


def transform_file(program: Any, model: Any, source: Path, target: Path, spec: dict[str, Any]) -> int:
    """Score one input file into `target`; returns the records scored. Raises
    RuntimeError naming the file and the line that failed; no partial `target` is left."""
    data = source.read_bytes().replace(b"\r\n", b"\n")
    split = spec["split"] == "Line"
    requests = batches(data, spec["strategy"], spec["max_payload_mb"] * MB) if split else iter([(0, data)])
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    records = 0
    try:
        with partial.open("w") as out:
            for first, body in requests:
                try:
                    answer = _answer(program, model, body, spec["content_type"], spec["accept"])
                except Exception:  # find the line, for the message
                    where = _failing_line(program, model, body, spec, first) if split else "the whole file"
                    raise RuntimeError(f"{source.name}: {where}") from None
                if spec["join_input"]:
                    answer = _joined(source.name, body, answer, first)
                out.write(answer if answer.endswith("\n") else answer + "\n")
                records += body.count(b"\n") + 1
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
        except RuntimeError as exc:
            print(f"ERROR: {exc}", file=sys.stderr)
            return 1
    print(f"transformed {total} records from {len(files)} file(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
