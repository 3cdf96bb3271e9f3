"""S3 as a folder: `s3://bucket/key` lives at `<root>/s3/bucket/key`.

Prefix semantics follow S3 (and SageMaker's S3Prefix inputs): a URI names every object
whose key starts with it, and an exact object key names that one file. What jobs read
may also be a local file or folder (see `pipeline.local.inputs`); what they write goes
to S3 URIs only.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.atomic_file import write_atomically
from pipeline.local.inputs import input_location, s3_location

__all__ = ["Workspace"]


@dataclass(frozen=True)
class Workspace:
    """`input_base` is where relative input paths are resolved: the directory the command
    was typed in, fixed when the run's workspace is made (jobs run in their own folders)."""

    root: Path
    input_base: Path = field(default_factory=Path.cwd)

    @property
    def s3_root(self) -> Path:
        return self.root / "s3"

    def path(self, uri: str) -> Path:
        """Where an S3 object lives (outputs, code, artifacts: always S3)."""
        return s3_location(uri, self.s3_root)

    def source(self, uri: str) -> Path:
        """Where an input is read from: an S3 URI's workspace path, or a local file or folder."""
        return input_location(uri, self.root, self.input_base)

    def objects(self, uri: str) -> list[tuple[Path, str]]:
        """(local file, path relative to the prefix) for every object under an input URI: an
        exact key (or file) gives that file under its base name, a folder prefix every file below."""
        target = self.source(uri)
        if target.is_file():
            return [(target, target.name)]
        found: list[tuple[Path, str]] = []
        if target.is_dir():
            found += [(p, p.relative_to(target).as_posix()) for p in sorted(target.rglob("*")) if p.is_file()]
        return found

    def download(self, uri: str, destination: Path) -> int:
        """Copy what a processing input or training channel receives; returns the file count."""
        files = self.objects(uri)
        destination.mkdir(parents=True, exist_ok=True)
        for source, relative in files:
            out = destination / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, out)
        return len(files)

    def upload_dir(self, source: Path, uri: str) -> int:
        """Write a job's output folder to a prefix (replacing what was there)."""
        target = self.path(uri)
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        target.mkdir(parents=True, exist_ok=True)
        count = 0
        for path in sorted(source.rglob("*")):
            if path.is_file():
                out = target / path.relative_to(source)
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
                count += 1
        return count

    def add_files(self, source: Path, uri: str) -> int:
        """Copy every file of `source` under a prefix, replacing objects of the same key and
        keeping the others, as a batch transform job writes its `.out` objects (SageMaker
        deletes nothing under `S3OutputPath`). Each file is written beside its target and
        renamed, so a reader never sees half of one. Returns the file count."""
        target = self.path(uri)
        files = [p for p in sorted(source.rglob("*")) if p.is_file()]
        for path in files:
            write_atomically(target / path.relative_to(source), path.read_bytes())
        return len(files)

    def put(self, uri: str, body: bytes) -> Path:
        target = self.path(uri)
        if not (target.is_file() and target.read_bytes() == body):
            write_atomically(target, body)
        return target

    def content_hash(self, uri: str) -> str:
        """SHA-256 over the names and bytes of everything under a URI (for cache keys)."""
        digest = hashlib.sha256()
        for path, relative in self.objects(uri):
            digest.update(relative.encode() + b"\0")
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()
