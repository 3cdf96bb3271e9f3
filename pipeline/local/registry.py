"""The local SageMaker Model Registry: moto, plus a journal so packages outlive it.

moto keeps state in memory; the journal (`registry.json` in the workspace) records every
CreateModelPackage request and the latest approval status, and `restore` replays it into a
fresh moto server. Versions are assigned in order per group, so replay reproduces the same
ARNs. The same boto3 calls run against SageMaker.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LocalRegistry"]


@dataclass
class LocalRegistry:
    client: Any  # boto3 SageMaker client (moto endpoint locally)
    journal: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _entries(self) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        return json.loads(self.journal.read_text())

    def _save(self, entries: list[dict[str, Any]]) -> None:
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.journal.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=2))
        tmp.replace(self.journal)

    def _ensure_group(self, group: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError:
            self.client.create_model_package_group(
                ModelPackageGroupName=group, ModelPackageGroupDescription=f"{group} (created by the pipeline)"
            )

    def register(self, request: dict[str, Any]) -> str:
        """CreateModelPackage, creating the group on first use as the RegisterModel step does."""
        with self._lock:
            self._ensure_group(request["ModelPackageGroupName"])
            arn = self.client.create_model_package(**request)["ModelPackageArn"]
            entries = self._entries()
            entries.append({"arn": arn, "request": request, "approval_status": request.get("ModelApprovalStatus")})
            self._save(entries)
            return arn

    def exists(self, arn: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.describe_model_package(ModelPackageName=arn)
            return True
        except ClientError:
            return False

    def set_approval(self, arn: str, status: str, description: str = "") -> None:
        with self._lock:
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

    def restore(self) -> int:
        """Replay the journal into an empty emulator; returns how many packages were restored."""
        from botocore.exceptions import ClientError

        restored = 0
        for entry in self._entries():
            try:
                self.client.describe_model_package(ModelPackageName=entry["arn"])
                continue  # the emulator still has it
            except ClientError:
                pass
            request = dict(entry["request"])
            if entry.get("approval_status"):
                request["ModelApprovalStatus"] = entry["approval_status"]
            self._ensure_group(request["ModelPackageGroupName"])
            arn = self.client.create_model_package(**request)["ModelPackageArn"]
            if arn != entry["arn"]:
                raise RuntimeError(f"restoring the local registry gave {arn}, expected {entry['arn']}")
            restored += 1
        return restored
