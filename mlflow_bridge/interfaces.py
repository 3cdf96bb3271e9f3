"""The bridge's edges, declared: what the service needs of SageMaker's registry, of
MLflow's registry and of a deployment target. `SageMakerRegistry`, `MlflowRegistry`,
`EndpointDeployer` and local mode's `LocalModelServer` implement them; the type checker
(mypy, run by tests/test_types.py) holds each implementation to its interface where it
is handed to `Bridge`, instead of the service matching method names at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mlflow_bridge.decisions import Action, MlflowVersion, Package
    from mlflow_bridge.mlflow_registry import ModelSource

__all__ = ["ModelDeployer", "ModelRegistry", "PackageRegistry"]


class PackageRegistry(Protocol):
    """SageMaker Model Registry: read, and the package's stage tag written."""

    def describe(self, arn: str) -> Package | None:
        """The package's current state; None when it does not exist."""
        ...

    def packages(self, group: str) -> list[Package]:
        """Every versioned package of the group, described."""
        ...

    def tag_stage(self, package: Package) -> None:
        """Tag the package with its lifecycle stage (`contract.PACKAGE_STAGE_TAG`)."""
        ...


class ModelRegistry(Protocol):
    """MLflow Model Registry: versions of one registered model and writes to them."""

    def versions(self, name: str) -> list[MlflowVersion]: ...

    def model_source(self, run_id: str) -> ModelSource | None: ...

    def ensure_model(self, name: str, description: str = "") -> None: ...

    def create_version(self, name: str, run_id: str, source: ModelSource, tags: dict[str, str]) -> str: ...

    def delete_version(self, name: str, version: str) -> None: ...

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None: ...

    def apply(self, name: str, alias: str, action: Action) -> None: ...


class ModelDeployer(Protocol):
    """Where the champion is served: a SageMaker endpoint, or a local scoring server."""

    def deploy(self, package: Package) -> tuple[str, str]:
        """Serve the package. Returns (endpoint name or URL, "created" / "updated" /
        "unchanged"); raises DeploymentError when it cannot now (retried)."""
        ...

    def serves(self, package: Package) -> bool:
        """Whether the endpoint serves this package now."""
        ...
