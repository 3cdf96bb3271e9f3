"""Must not type-check (tests/test_types.py): a deployer whose methods have the right
names but not the interface's signatures. Matching by method name would accept it."""

from __future__ import annotations

from mlflow_bridge.decisions import Package
from mlflow_bridge.mlflow_registry import MlflowRegistry
from mlflow_bridge.sagemaker_registry import SageMakerRegistry
from mlflow_bridge.service import Bridge
from mlflow_bridge.settings import BridgeSettings


class NamedLikeADeployer:
    def deploy(self) -> str:  # no package, and not (endpoint, outcome)
        return "endpoint"

    def serves(self, package: Package) -> bool:
        return False


def build(settings: BridgeSettings) -> Bridge:
    return Bridge(settings, SageMakerRegistry(None), MlflowRegistry(None), NamedLikeADeployer())
