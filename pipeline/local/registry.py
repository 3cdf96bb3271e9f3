"""The local SageMaker Model Registry: moto, plus a journal so packages outlive it.

moto keeps state in memory; the journal (`registry.json` in the workspace) records every
CreateModelPackage request, the latest approval status and the lifecycle stage (which
moto 5.2.5 does not keep: `JournaledPackages` adds it to what the bridge reads), and is
replayed into a fresh
moto server when the registry is first used. Versions are assigned in order per group, so
replay reproduces the same ARNs. The same boto3 calls run against SageMaker.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlflow_bridge.decisions import Package
from pipeline.atomic_file import write_atomically
from pipeline.errors import LocalModeError
from pipeline.local.file_lock import locked

__all__ = ["JOURNAL_NAME", "JournaledPackages", "LocalRegistry", "journal_has"]

JOURNAL_NAME = "registry.json"  # in the workspace


def _journal_entries(journal: Path) -> list[dict[str, Any]]:
    return json.loads(journal.read_text()) if journal.exists() else []


def journal_has(journal: Path, arn: str) -> bool:
    """Whether a package is registered, read from the journal (which the emulator mirrors),
    so asking needs no emulator."""
    return any(entry["arn"] == arn for entry in _journal_entries(journal))


class LocalRegistry:
    """`client` connects to the emulator and replays the journal on first use, so a run
    whose Register step is cached never starts the emulator; `prepare_in_background`
    does it while a job runs, so the Register step does not wait for it."""

    def __init__(self, connect: Callable[[], Any], journal: Path) -> None:
        self._connect = connect
        self.journal = journal
        self._lock = threading.RLock()
        self._client: Any = None
        self._preparing = False

    @property
    def client(self) -> Any:
        """A boto3 SageMaker client of the emulator, holding every journaled package."""
        with self._lock:
            if self._client is None:
                client = self._connect()
                self._restore(client)
                self._client = client
            return self._client

    def prepare_in_background(self) -> None:
        """Connect now, off the caller's thread. A failure is not lost: the next use of
        `client` tries again and raises it."""
        if self._preparing:
            return
        self._preparing = True

        def prepare() -> None:
            with contextlib.suppress(Exception):
                self.client.list_model_package_groups(MaxResults=1)  # loads the emulator's SageMaker backend

        threading.Thread(target=prepare, daemon=True).start()

    def _entries(self) -> list[dict[str, Any]]:
        return _journal_entries(self.journal)

    def _save(self, entries: list[dict[str, Any]]) -> None:
        write_atomically(self.journal, json.dumps(entries, indent=2))

    @staticmethod
    def _ensure_group(client: Any, group: str) -> None:
        from botocore.exceptions import ClientError

        try:
            client.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError:
            client.create_model_package_group(
                ModelPackageGroupName=group, ModelPackageGroupDescription=f"{group} (created by the pipeline)"
            )

    def register(self, request: dict[str, Any]) -> str:
        """CreateModelPackage, creating the group on first use as the RegisterModel step does.
        Under the journal's file lock, the emulator first takes in what other commands of the
        workspace registered since it started, so versions continue instead of repeating."""
        with self._lock, locked(self.journal):
            self._restore(self.client)
            self._ensure_group(self.client, request["ModelPackageGroupName"])
            arn = self.client.create_model_package(**request)["ModelPackageArn"]
            entries = self._entries()
            entries.append({"arn": arn, "request": request, "approval_status": request.get("ModelApprovalStatus")})
            self._save(entries)
            return arn

    def exists(self, arn: str) -> bool:
        return journal_has(self.journal, arn)

    def set_approval(self, arn: str, status: str, description: str = "") -> None:
        with self._lock, locked(self.journal):
            request: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
            # moto drops CustomerMetadataProperties on an update that omits them; SageMaker keeps them,
            # so sending the current ones is a no-op there and a fix here.
            current = self.client.describe_model_package(ModelPackageName=arn)
            if current.get("CustomerMetadataProperties"):
                request["CustomerMetadataProperties"] = current["CustomerMetadataProperties"]
            if description:
                request["ApprovalDescription"] = description
            self.client.update_model_package(**request)
            entries = self._entries()
            for entry in entries:
                if entry["arn"] == arn:
                    entry["approval_status"] = status
            self._save(entries)

    def set_lifecycle(self, arn: str, lifecycle: dict[str, str]) -> None:
        """UpdateModelPackage's ModelLifeCycle ({Stage, StageStatus, StageDescription}),
        recorded in the journal: the emulator has no lifecycle stages."""
        with self._lock, locked(self.journal):
            entries = self._entries()
            for entry in entries:
                if entry["arn"] == arn:
                    entry["lifecycle"] = dict(lifecycle)
            self._save(entries)

    def lifecycle(self, arn: str) -> dict[str, str]:
        return next((e.get("lifecycle") or {} for e in self._entries() if e["arn"] == arn), {})

    def _restore(self, client: Any) -> None:
        """Replay the journal into an empty emulator (a package it still holds is kept)."""
        from botocore.exceptions import ClientError

        for entry in self._entries():
            try:
                client.describe_model_package(ModelPackageName=entry["arn"])
                continue
            except ClientError:
                pass
            request = dict(entry["request"])
            if entry.get("approval_status"):
                request["ModelApprovalStatus"] = entry["approval_status"]
            self._ensure_group(client, request["ModelPackageGroupName"])
            arn = client.create_model_package(**request)["ModelPackageArn"]
            if arn != entry["arn"]:
                raise LocalModeError(f"restoring the local registry gave {arn}, expected {entry['arn']}")


class JournaledPackages:
    """The bridge's view of the local registry (`mlflow_bridge.interfaces.PackageRegistry`):
    what the emulator describes, with the lifecycle stage the journal holds."""

    def __init__(self, registry: LocalRegistry) -> None:
        from mlflow_bridge.sagemaker_registry import SageMakerRegistry

        self.registry = registry
        self.described = SageMakerRegistry(registry.client)

    def _with_lifecycle(self, package: Package | None) -> Package | None:
        if package is None:
            return None
        lifecycle = self.registry.lifecycle(package.arn)
        return replace(
            package, lifecycle_stage=lifecycle.get("Stage", ""), lifecycle_status=lifecycle.get("StageStatus", "")
        )

    def describe(self, arn: str) -> Package | None:
        return self._with_lifecycle(self.described.describe(arn))

    def packages(self, group: str) -> list[Package]:
        return [p for p in (self._with_lifecycle(p) for p in self.described.packages(group)) if p is not None]

    def tag_stage(self, package: Package) -> None:
        """Nothing: the tag serves IAM policies, and local mode has none."""
