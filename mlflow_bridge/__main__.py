"""`python -m mlflow_bridge`: the bridge's actions by hand.

    python -m mlflow_bridge handle EVENT.json     # process one event as the Lambda would
    python -m mlflow_bridge sync [--group NAME] [--dry-run]

Settings come from the same environment variables as the Lambda (see settings.py).
Exit codes: 0 done, 2 bad input (malformed event, a missing or invalid setting), 1 other failures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mlflow_bridge.errors import BridgeError, InvalidSettings, MalformedEvent
from mlflow_bridge.failures import permanent_failure


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlflow_bridge", description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    handle = verbs.add_parser("handle", help="process one EventBridge event from a JSON file ('-' for stdin)")
    handle.add_argument("event")
    sync = verbs.add_parser(
        "sync", help="repair MLflow to match every package of the groups, and each endpoint to serve its holder"
    )
    sync.add_argument("--group", action="append", default=[], help="package group (default: the configured ones)")
    sync.add_argument("--dry-run", action="store_true", help="print the repairs without making them")
    args = parser.parse_args(argv)

    from mlflow_bridge.contract import EXECUTION_STATUS_DETAIL_TYPE
    from mlflow_bridge.events import detail_type, parse_event
    from mlflow_bridge.service import Bridge
    from mlflow_bridge.settings import BridgeSettings

    try:
        settings = BridgeSettings.from_env()
    except InvalidSettings as exc:
        for name, message in exc.problems:
            print(f"error: {name}: {message}", file=sys.stderr)
        return 2
    if not settings.tracking_uri:
        print("error: MLFLOW_TRACKING_URI is not set", file=sys.stderr)
        return 2
    try:
        if args.verb == "handle":
            try:
                text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text(encoding="utf-8")
                event = json.loads(text)
            except UnicodeDecodeError as exc:
                raise MalformedEvent(f"{args.event} is not UTF-8 text: {exc}") from None
            except RecursionError:
                raise MalformedEvent(f"{args.event} is JSON nested too deeply to be an event") from None
            except ValueError as exc:
                raise MalformedEvent(f"{args.event} is not JSON: {exc}") from None
            if detail_type(event) == EXECUTION_STATUS_DETAIL_TYPE:
                raise MalformedEvent(
                    "a pipeline execution status event is the execution recorder's (its own function); by hand, "
                    "`python -m pipeline.definition describe ID --log` records an execution on its parent run"
                )
            parsed = parse_event(event)  # before any client is made: a bad event needs no service
            print(json.dumps(Bridge.from_settings(settings).handle(parsed), indent=2))
            return 0
        groups = args.group or settings.groups
        if not groups:
            print("error: name a --group or set BRIDGE_MODEL_PACKAGE_GROUPS", file=sys.stderr)
            return 2
        changes = Bridge.from_settings(settings).sync_groups(groups, dry_run=args.dry_run)
        prefix = "would " if args.dry_run else ""
        for change in changes:
            print(f"{prefix}{change}")
        state = "unchanged" if args.dry_run or not changes else "repaired"
        print(f"{len(changes)} change(s){' planned' if args.dry_run else ''}; MLflow {state}")
        return 0
    except (MalformedEvent, InvalidSettings) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the services' errors (a server down, a refusal): one line and the fix, exit 1
        for change in getattr(exc, "changes", []):  # StagesUnreachable: what the other stages got
            print(change)
        problem = permanent_failure(exc)
        if problem is not None:
            print(f"error: {problem.reason}\nfix: {problem.fix}", file=sys.stderr)
            return 1
        if not isinstance(exc, BridgeError | OSError) and not _is_service_error(exc):
            raise
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _is_service_error(exc: BaseException) -> bool:
    """An error of the services the bridge talks to, reported as a message, not a traceback."""
    module = type(exc).__module__.split(".", 1)[0]
    return module in {"mlflow", "botocore", "requests", "urllib3"}


if __name__ == "__main__":
    sys.exit(main())
