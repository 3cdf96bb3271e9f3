"""The step scripts as one content-addressed bundle.

The SageMaker SDK uploads code while it builds a definition, under keys that change from
build to build for tuning jobs (aws/sagemaker-python-sdk#3651), which defeats step
caching. We package `pipeline/steps/scripts/` ourselves, byte-for-byte reproducibly, name
it by its SHA-256, and hand the SDK S3 URIs only. Building a definition is then pure and
offline; uploading is a separate, idempotent edge (`upload_bundle`). `code_bundle(cfg)`
is the bundle a config's jobs run: the scripts, each step's `source_dir` over them, the
dataset spec and the estimator's pinned library.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import PipelineConfig
from pipeline.dataset_spec import SPEC_FILE, dataset_spec_bytes
from pipeline.errors import ConfigError
from pipeline.estimators import estimator_requirements
from pipeline.image_constraints import constraints_file, pinned_versions, requirement_conflicts
from pipeline.job_scripts import SCRIPTS_DIR

__all__ = [
    "ENTRYPOINT",
    "SCRIPTS_DIR",
    "SCRIPTS_INPUT_NAME",
    "CodeBundle",
    "build_bundle",
    "code_bundle",
    "files_digest",
    "read_folder",
    "upload_bundle",
]

# The processing input that brings the bundle to a processing job (local mode finds the
# job's requirements there).
SCRIPTS_INPUT_NAME = "scripts"
ENTRYPOINT = "entrypoint.sh"
REQUIREMENTS = "requirements.txt"


@dataclass(frozen=True)
class CodeBundle:
    """The scripts' files and where they live in S3, keyed by content."""

    files: dict[str, bytes]
    digest: str
    s3_prefix: str

    @property
    def scripts_uri(self) -> str:
        """Prefix holding the unpacked scripts (processing jobs download it as an input)."""
        return f"{self.s3_prefix}/scripts"

    @property
    def entrypoint_uri(self) -> str:
        return f"{self.scripts_uri}/{ENTRYPOINT}"

    @property
    def sourcedir_uri(self) -> str:
        """The tarball the training toolkit and the serving container unpack."""
        return f"{self.s3_prefix}/sourcedir.tar.gz"

    def tarball(self) -> bytes:
        """A gzip tarball with fixed mtimes, owners and order, so equal files give equal bytes."""
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(self.files):
                info = tarfile.TarInfo(name)
                info.size = len(self.files[name])
                info.mode = 0o755 if name.endswith(".sh") else 0o644
                info.mtime = 0
                tar.addfile(info, io.BytesIO(self.files[name]))
        return gzip.compress(raw.getvalue(), mtime=0)

    def objects(self) -> dict[str, bytes]:
        """Every S3 object of the bundle: URI -> body."""
        objects = {f"{self.scripts_uri}/{name}": body for name, body in self.files.items()}
        objects[self.sourcedir_uri] = self.tarball()
        return objects


def files_digest(files: Mapping[str, bytes]) -> str:
    """SHA-256 over names and contents, independent of order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


def read_folder(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` by relative POSIX path, caches and bytecode left out."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc"}
    }


def build_bundle(
    s3_base: str,
    *,
    install_requirements: bool,
    scripts_dir: Path = SCRIPTS_DIR,
    overlay: Mapping[str, bytes] | None = None,
    extra_requirements: list[str] | None = None,
) -> CodeBundle:
    """Read the scripts and compute their content address. No I/O beyond reading files.

    `overlay` adds or replaces files (a team's own `source_dir`, the dataset spec);
    `extra_requirements` are appended to requirements.txt. Without `install_requirements`
    the requirements file is left out, so neither the training toolkit nor the processing
    entrypoint tries to reach a package index.
    """
    files = {**read_folder(scripts_dir), **(overlay or {})}
    if extra_requirements:
        current = files.get(REQUIREMENTS, b"").decode()
        added = "".join(f"{line}\n" for line in extra_requirements if line not in current.splitlines())
        files[REQUIREMENTS] = (current.rstrip("\n") + "\n" + added).encode()
    if not install_requirements:
        files.pop(REQUIREMENTS, None)
    short = files_digest(files)[:16]
    return CodeBundle(files=files, digest=short, s3_prefix=f"{s3_base}/code/{short}")


def upload_bundle(bundle: CodeBundle, s3_client: Any) -> int:
    """Upload the objects that are not there yet; returns how many were written.

    Keys are content-addressed, so an existing key already holds these exact bytes and a
    rerun writes nothing.
    """
    written = 0
    for uri, body in bundle.objects().items():
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        try:
            s3_client.head_object(Bucket=bucket, Key=key)
            continue
        except s3_client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchKey", "NotFound"}:
                raise
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)
        written += 1
    return written


def _source_dir_overlay(cfg: PipelineConfig) -> tuple[dict[str, bytes], list[tuple[str, str]]]:
    """The files of every `steps.<step>.source_dir`, and problems: a missing folder, a
    missing entry script, or two steps' folders disagreeing about a file of the same name
    (they share one bundle)."""
    overlay: dict[str, bytes] = {}
    owner: dict[str, str] = {}
    problems = []
    for key in ("preprocess", "train", "evaluate"):
        settings = getattr(cfg.steps, key)
        if settings.source_dir is None:
            continue
        folder = Path(settings.source_dir).expanduser()
        if not folder.is_dir():
            problems.append((f"steps.{key}.source_dir", f"{settings.source_dir!r} is not a folder (from {Path.cwd()})"))
            continue
        files = read_folder(folder)
        if settings.script not in files:
            problems.append((f"steps.{key}.script", f"{settings.script!r} is not in {settings.source_dir}"))
        for name, body in files.items():
            if name in overlay and overlay[name] != body:
                problems.append((f"steps.{key}.source_dir", f"{name} differs from the one in steps.{owner[name]}"))
            overlay[name], owner[name] = body, key
    return overlay, problems


def code_bundle(cfg: PipelineConfig) -> CodeBundle:
    """The scripts bundle: the bundled scripts, each step's `source_dir` over them, the
    dataset spec and the estimator's pinned library. Every script the config names must be
    in it."""
    overlay, problems = _source_dir_overlay(cfg)
    overlay[SPEC_FILE] = dataset_spec_bytes(cfg)
    requirements = [*estimator_requirements(cfg.training.estimator_path), *cfg.training.requirements]
    constraints = constraints_file(cfg)
    if constraints:  # the first line, so every requirement installs under the image's pins
        bundled = (overlay.get(REQUIREMENTS) or (SCRIPTS_DIR / REQUIREMENTS).read_bytes()).decode()
        pins = pinned_versions((SCRIPTS_DIR / constraints).read_text())
        problems += [
            ("training.requirements", f"{conflict} (pip keeps the image's pins; to change them, build an image "
             "with them and set runtime.image_uri)")
            for conflict in requirement_conflicts([*bundled.splitlines(), *requirements], pins)
        ]  # fmt: skip
        overlay[REQUIREMENTS] = f"-c {constraints}\n{bundled}".encode()
    if requirements and not cfg.runtime.install_requirements and not cfg.runtime.image_uri:
        problems.append(
            (
                "runtime.install_requirements",
                f"the jobs need {', '.join(requirements)}, which the scikit-learn framework image lacks: "
                "set runtime.install_requirements: true, or runtime.image_uri to an image that has them",
            )
        )
    bundle = build_bundle(
        cfg.s3_base,
        install_requirements=cfg.runtime.install_requirements,
        overlay=overlay,
        extra_requirements=requirements,
    )
    problems += [
        (f"steps.{key}.script", f"{script!r} is not in {SCRIPTS_DIR.relative_to(SCRIPTS_DIR.parents[2])}")
        for key, script in (
            ("preprocess", cfg.steps.preprocess.script),
            ("train", cfg.steps.train.script),
            ("evaluate", cfg.steps.evaluate.script),
        )
        if script not in bundle.files and getattr(cfg.steps, key).source_dir is None
    ]
    if problems:
        raise ConfigError(problems)
    return bundle
