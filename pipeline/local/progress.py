"""What a person watching a local run sees: a live table of the DAG's steps, then a
summary (MLflow links, evaluation metrics, gate result, package ARN) or, for a failed
step, the end of its log and where the whole log is."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from pipeline.local.jobs import log_tail
from pipeline.local.runner import ExecutionRecord, StepRecord

__all__ = ["LiveProgress", "summary"]

_STYLE = {
    "Pending": "dim",
    "Executing": "yellow",
    "Succeeded": "green",
    "Cached": "cyan",
    "Failed": "bold red",
    "Stopped": "bold magenta",
    "Skipped": "dim",
}


def _duration(step: StepRecord) -> str:
    if step.started is None:
        return ""
    end = step.ended if step.ended is not None else time.time()
    return f"{end - step.started:.1f}s"


def steps_table(record: ExecutionRecord) -> Table:
    table = Table(title=f"{record.pipeline} · local execution {record.id} · {record.status}", expand=False)
    table.add_column("step")
    table.add_column("type")
    table.add_column("status")
    table.add_column("time", justify="right")
    table.add_column("detail", overflow="fold")
    for step in record.steps.values():
        table.add_row(
            step.display_name or step.name,
            step.type,
            Text(step.status, style=_STYLE.get(step.status, "")),
            _duration(step),
            step.failure or step.detail,
        )
    return table


class LiveProgress:
    """`on_change` callback for LocalExecution that redraws the table."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live = Live(console=console, refresh_per_second=4, transient=False)
        self.record: ExecutionRecord | None = None

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.record is not None:
            self.live.update(steps_table(self.record))
        self.live.__exit__(*exc)
        if not self.console.is_terminal:  # rich leaves the last line of a non-terminal Live open
            self.console.line()

    def __call__(self, record: ExecutionRecord, step: StepRecord) -> None:
        self.record = record
        self.live.update(steps_table(record))


def summary(record: ExecutionRecord, tracking_uri: str, report: dict[str, Any] | None) -> Group:
    """The end-of-run summary, as plain `key: value` lines so ARNs and links copy whole."""
    rows: list[tuple[str, str]] = [("execution", record.arn), ("status", record.status)]
    cached = sum(1 for s in record.steps.values() if s.status == "Cached")
    rows.append(("steps", f"{len(record.steps)} ({cached} cached)"))
    if report:
        section = next((v for k, v in report.items() if k.endswith("_metrics") and isinstance(v, dict)), {})
        # The report's leading scalar metrics; the rest are in evaluation.json.
        scalars = [(k, v["value"]) for k, v in section.items() if isinstance(v, dict) and "value" in v][:8]
        rows.append(("test metrics", ", ".join(f"{k}={v:.4g}" for k, v in scalars)))
        run_id = report.get("mlflow", {}).get("run_id")
        if run_id and run_id != "untracked":
            rows.append(("MLflow run", f"{run_id} ({tracking_uri}/#/runs/{run_id})"))
    for step in record.steps.values():
        if step.type == "Condition" and step.properties:
            label = (step.display_name or step.name).replace("-", " ").lower()  # "quality gate", "drift gate"
            rows.append((label, "passed" if step.properties.get("Outcome") == "True" else "failed"))
        if step.type == "RegisterModel" and step.properties.get("ModelPackageArn"):
            rows.append(("model package", step.properties["ModelPackageArn"]))
    rows.append(("MLflow UI", tracking_uri))
    width = max(len(key) for key, _ in rows)
    parts: list[Any] = [Text(f"{key:<{width}}  {value}", style=_STYLE.get(value, "")) for key, value in rows]
    if record.failure_reason:
        parts.append(Text(record.failure_reason, style="bold red"))
    for step in record.steps.values():
        if step.status == "Failed" and step.log:
            parts.append(Text(f"last lines of {step.name}'s log ({step.log}):", style="red"))
            parts.append(Text(log_tail(Path(step.log), 15)))
    return Group(*parts)
