"""Where local jobs run: a Python environment with the SageMaker image's libraries, or this
project's own.

SageMaker runs the jobs in the scikit-learn 1.4-2 image (scikit-learn 1.4.2, numpy 2.1.0,
pandas 2.3.2, pyarrow 17.0.0, ...) and installs the bundle's `requirements.txt` on top,
under the image's pins (`pipeline/image_constraints.py`). This project's environment has
other versions (pandas 3 reads strings differently; a model pickled by one scikit-learn
minor version may not load in another), so "it ran locally" proves little unless the jobs
run with the image's libraries. `ImageEnvironments` builds that environment once per
(image pins, requirements, Python) into a machine-wide cache and reuses it: the image's
libraries from its constraints file, then `requirements.txt` exactly as the job installs it.

The builder is uv (`uv venv`, `uv pip install -c ... -r ...`), not `python -m venv` and
pip: it resolves pip's requirement and constraint syntax the same way, and builds the
environment in seconds from its wheel cache (pip takes about a minute), which is what
makes the image's environment affordable as local mode's default.

Python's minor version is this interpreter's (3.11): the image's 3.10 cannot be installed
on these machines, so the scripts are kept 3.10-compatible and checked with vermin in CI.
The image's own harness (the training and inference toolkits, Flask, gunicorn) is not
installed: local mode stands in for it, and its pins still constrain what is installed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.config import PipelineConfig
from pipeline.errors import LocalModeError, UsageError
from pipeline.image_constraints import HARNESS_PACKAGES, constraints_file, normalised_name, pinned_versions
from pipeline.local.file_lock import locked
from pipeline.machine_cache import machine_cache_dir

__all__ = [
    "JOB_ENVIRONMENT_CHOICES",
    "ImageEnvironments",
    "JobEnvironment",
    "JobEnvironments",
    "ProjectEnvironment",
    "bundle_environment",
    "job_environments",
    "serving_environment",
]

REQUIREMENTS = "requirements.txt"
MANIFEST = "environment.json"


@dataclass(frozen=True)
class JobEnvironment:
    """One Python environment a job runs in: its interpreter and what it has installed."""

    python: Path
    label: str  # for the console and the step cache: "scikit-learn 1.4-2 image", "project"

    @functools.cached_property
    def packages(self) -> dict[str, str]:
        """Normalised name -> version of what is installed (read when first asked: only a
        model server's version check needs it, and listing costs ~0.3 s)."""
        manifest = self.python.parents[1] / MANIFEST
        if manifest.is_file():
            return dict(json.loads(manifest.read_text())["packages"])
        return _installed(self.python)

    def path(self, inherited: str) -> str:
        """PATH with this environment's scripts first, so `python3` in a processing job's
        entrypoint is this environment's."""
        return f"{self.python.parent}{os.pathsep}{inherited}"

    def version(self, package: str) -> str:
        """The installed version of `package` ("" when it is not installed)."""
        return self.packages.get(normalised_name(package), "")


class JobEnvironments(Protocol):
    """Picks the environment for a job from the code it runs (its bundle's requirements)."""

    label: str

    def for_code(self, code_dir: Path) -> JobEnvironment:
        """The environment for the scripts in `code_dir`, a job's copy of a code bundle.
        Raises LocalModeError."""
        ...

    def for_bundle(self, files: Mapping[str, bytes]) -> JobEnvironment:
        """The same for a code bundle's files by relative path (before any job has it)."""
        ...


def _installed(python: Path) -> dict[str, str]:
    """name -> version of every distribution `python` sees, by normalised name."""
    script = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    found = json.loads(
        subprocess.run([str(python), "-I", "-c", script], capture_output=True, text=True, check=True).stdout
    )
    return {normalised_name(name): version for name, version in found.items()}


class ProjectEnvironment:
    """This project's own environment: nothing to build, but not the image's libraries."""

    label = "project"

    def __init__(self) -> None:
        self._environment = JobEnvironment(Path(sys.executable), self.label)

    def for_code(self, code_dir: Path) -> JobEnvironment:
        return self.for_bundle({})

    def for_bundle(self, files: Mapping[str, bytes]) -> JobEnvironment:
        return self._environment


def environment_key(constraints: str, requirements: str, python: str) -> str:
    """The cache key of an image environment: what decides its content."""
    material = json.dumps({"constraints": constraints, "requirements": requirements, "python": python})
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def image_libraries(constraints: str) -> list[str]:
    """`name==version` of every package the image has installed, from its constraints file,
    less the harness local mode stands in for."""
    return [
        f"{name}=={version}" for name, version in pinned_versions(constraints).items() if name not in HARNESS_PACKAGES
    ]


def uv_executable() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


class ImageEnvironments:
    """Environments with a SageMaker image's libraries, built on first use and kept in
    `cache_root`, one folder per key. A build holds the key's file lock, so concurrent
    commands build it once, and its manifest, written last, marks it complete: a build cut
    short is removed and rebuilt, never used."""

    def __init__(self, constraints_name: str, image: str, cache_root: Path | None = None) -> None:
        """`constraints_name`: the image's constraints file inside a code bundle
        (`sklearn-1.4-2-constraints.txt`); `image`: how the console names it."""
        self.constraints_name = constraints_name
        self.label = f"{image} image"
        self.cache_root = (cache_root or machine_cache_dir()) / "job-environments"
        self._built: dict[str, JobEnvironment] = {}
        self.built_seconds = 0.0  # time this object spent building (the bench prints it)

    def for_code(self, code_dir: Path) -> JobEnvironment:
        names = (self.constraints_name, REQUIREMENTS)
        return self.for_bundle({name: (code_dir / name).read_bytes() for name in names if (code_dir / name).is_file()})

    def for_bundle(self, files: Mapping[str, bytes]) -> JobEnvironment:
        if self.constraints_name not in files:
            raise LocalModeError(f"the job's code has no {self.constraints_name}: its image's pins are unknown")
        return self.for_files(files[self.constraints_name].decode(), files.get(REQUIREMENTS, b"").decode())

    def for_files(self, constraints: str, requirements: str) -> JobEnvironment:
        """The environment for these file contents, built if this machine has none yet.
        Raises LocalModeError naming uv's reason when it cannot be built."""
        # the base interpreter the venv links to, exactly: an upgraded or moved one is another key
        python = f"{sys.version.split()[0]} {sys.base_prefix}"
        key = environment_key(constraints, requirements, python)
        if key in self._built:
            return self._built[key]
        target = self.cache_root / key
        with locked(target):
            if not ((target / MANIFEST).is_file() and (target / "bin" / "python").exists()):
                started = time.perf_counter()
                self._build(target, constraints, requirements)
                self.built_seconds += time.perf_counter() - started
        environment = JobEnvironment(target / "bin" / "python", self.label)
        self._built[key] = environment
        return environment

    def _build(self, target: Path, constraints: str, requirements: str) -> None:
        self.cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=self.cache_root))
        try:
            (staging / self.constraints_name).write_text(constraints)
            (staging / REQUIREMENTS).write_text(requirements)
            uv = uv_executable()
            # a venv is not relocatable: made at its final path, complete once the manifest is
            shutil.rmtree(target, ignore_errors=True)
            self._uv([uv, "venv", "--quiet", "--python", sys.executable, str(target)])
            # bytecode compiled now, as pip does: else each job compiles the libraries it imports
            command = [uv, "pip", "install", "--quiet", "--compile-bytecode",
                       "--python", str(target / "bin" / "python"),
                       "-c", str(staging / self.constraints_name), *image_libraries(constraints)]  # fmt: skip
            if requirements.strip():
                command += ["-r", str(staging / REQUIREMENTS)]
            self._uv(command)
            manifest = {"python": sys.version.split()[0], "packages": _installed(target / "bin" / "python")}
            (target / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))  # last: marks it complete
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _uv(self, command: list[str]) -> None:
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "UV_NO_PROGRESS": "1"})
        if done.returncode != 0:
            reason = (done.stderr.strip() or done.stdout.strip()).splitlines()[-6:]
            raise LocalModeError(
                f"could not build the jobs' {self.label} environment ({' '.join(command[:3])} failed: "
                + " / ".join(reason)
                + "); to run the jobs in this project's environment instead, pass --job-env project"
            )


JOB_ENVIRONMENT_CHOICES = ("image", "project")


def job_environments(cfg: PipelineConfig, choice: str | None) -> tuple[JobEnvironments, str]:
    """The environments for `--job-env` (`None`: the default, the image's when its pins are
    known), and a line for the console saying where the jobs run. Raises UsageError for
    `image` with a custom `runtime.image_uri`, whose libraries this project cannot know."""
    constraints = constraints_file(cfg)
    if choice == "project":
        return ProjectEnvironment(), "jobs run in this project's Python environment (--job-env project)"
    if constraints is None:
        if choice == "image":
            raise UsageError(
                "--job-env image: the jobs' libraries are those of runtime.image_uri "
                f"({cfg.runtime.image_uri}), which local mode cannot know; use --job-env project"
                if cfg.runtime.image_uri
                else f"--job-env image: no pins are known for framework version {cfg.runtime.framework_version}"
            )
        return ProjectEnvironment(), (
            "jobs run in this project's Python environment: the pins of "
            f"{cfg.runtime.image_uri or cfg.runtime.framework_version} are unknown to local mode"
        )
    image = f"scikit-learn {cfg.runtime.framework_version}"
    return ImageEnvironments(constraints, image), f"jobs run with the {image} image's libraries (--job-env image)"


def bundle_environment(cfg: PipelineConfig, environments: JobEnvironments) -> JobEnvironment:
    """The environment of the config's code bundle (the one every job of it runs), built if
    this machine has none yet."""
    from pipeline.code_bundle import code_bundle

    return environments.for_bundle(code_bundle(cfg).files)


def serving_environment(cfg: PipelineConfig, choice: str | None) -> JobEnvironment:
    """The environment local model servers run in: the jobs' (`--job-env`)."""
    return bundle_environment(cfg, job_environments(cfg, choice)[0])
