"""One base error for the pipeline package; the CLI maps each subclass to an exit code."""

from __future__ import annotations

__all__ = ["AwsError", "ConfigError", "Interrupted", "LocalModeError", "PipelineError", "UsageError"]


class PipelineError(Exception):
    """Base class: anything the CLI reports as a one-line message instead of a traceback."""

    exit_code = 1


class ConfigError(PipelineError):
    """The YAML (or an override) is invalid. Each problem names its key path."""

    exit_code = 2

    def __init__(self, problems: list[tuple[str, str]], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        lines = [f"{where}{path}: {message}" if path else f"{where}{message}" for path, message in problems]
        super().__init__("\n".join(lines))


class UsageError(PipelineError):
    """A command-line argument is malformed (e.g. `--param` without `=`)."""

    exit_code = 2


class AwsError(PipelineError):
    """An AWS API call failed; the message is AWS's own."""

    exit_code = 1


class LocalModeError(PipelineError):
    """Local mode could not do what SageMaker would have: a job, a step, an expression,
    tuning, the registry emulator, a server it starts. The CLI prints the message (which
    names the step, job or log) and exits 1."""

    exit_code = 1


class Interrupted(BaseException):
    """Raised in the main thread on SIGTERM (`pipeline.cli.stop_on_sigterm`), so a local run
    told to stop ends Stopped as one stopped with Ctrl-C does; a BaseException, as
    KeyboardInterrupt is, so no step's error handling takes it for a step failure. Exit 143."""
