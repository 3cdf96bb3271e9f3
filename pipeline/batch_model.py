"""Which model package a batch scores: the one an MLflow alias holds when it starts.

The batch pipeline takes `ModelPackageArn` and `ModelDataUri` (the package's
model.tar.gz, which holds the training baseline the drift check reads) as parameters, so
one definition scores with whichever package is current. `start --pipeline batch` and
`run --local --pipeline batch` fill them: from `--param ModelPackageArn=...`, else from the
alias (`batch.alias`; default the last stage's, else `champion`), whose MLflow version the
bridge tags with its package ARN.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mlflow_bridge.contract import Tags
from pipeline.config import PipelineConfig
from pipeline.errors import UsageError

__all__ = ["MODEL_PARAMETERS", "model_parameters", "package_for_alias"]

MODEL_PARAMETERS = ("ModelPackageArn", "ModelDataUri")


def package_for_alias(tracking_uri: str, registered_model: str, alias: str) -> str:
    """The package ARN the alias's version links. Raises UsageError when the model, the
    alias or the link is missing (nothing to score with)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        version = MlflowClient(tracking_uri).get_model_version_by_alias(registered_model, alias)
    except MlflowException as exc:
        # MLflow answers a missing model or alias with one of these; anything else is the server
        missing = exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}
        why = "does not exist in" if missing else f"could not be read from ({str(exc).splitlines()[0][:200]})"
        raise UsageError(
            f"no model to score: {registered_model}@{alias} {why} MLflow at {tracking_uri} "
            "(approve and promote a package first, or pass --param ModelPackageArn=...)"
        ) from None
    arn = version.tags.get(Tags.PACKAGE_ARN, "")
    if not arn:
        raise UsageError(f"{registered_model} version {version.version} (@{alias}) links no model package")
    return arn


def model_parameters(
    cfg: PipelineConfig,
    given: Mapping[str, str],
    describe: Callable[[str], dict[str, Any]],
    tracking_uri: Callable[[], str],
) -> dict[str, str]:
    """`ModelPackageArn` (given, else the package of `cfg.batch_alias` in MLflow at
    `tracking_uri()`, asked only then) and `ModelDataUri`: the package's first inference
    container's ModelDataUrl (from `describe`: DescribeModelPackage), so the drift check
    reads the baseline of the model that scores. Raises UsageError when the package is not
    Approved (SageMaker's CreateModel refuses it) or a given ModelDataUri is another."""
    arn = given.get("ModelPackageArn") or package_for_alias(
        tracking_uri(), cfg.mlflow.registered_model, cfg.batch_alias
    )
    described = describe(arn)
    status = described.get("ModelApprovalStatus", "")
    if status != "Approved":
        raise UsageError(f"model package {arn} is {status or 'not approved'}: a batch scores only an Approved package")
    containers = described.get("InferenceSpecification", {}).get("Containers", [])
    if not containers or not containers[0].get("ModelDataUrl"):
        raise UsageError(f"model package {arn} has no ModelDataUrl: it cannot be scored")
    data = containers[0]["ModelDataUrl"]
    if given.get("ModelDataUri", data) != data:
        raise UsageError(
            f"ModelDataUri {given['ModelDataUri']} is not model package {arn}'s model ({data}): the drift check "
            "would read another model's baseline (leave ModelDataUri out; it follows the package)"
        )
    return {"ModelPackageArn": arn, "ModelDataUri": data}
