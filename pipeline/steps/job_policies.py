"""Caching, retries and VPC placement: the same for every job step, set in one place."""

from __future__ import annotations

from typing import Any

from pipeline.config import PipelineConfig

__all__ = ["cache_config", "network_config", "retry_policies"]


def cache_config(cfg: PipelineConfig) -> Any:
    from sagemaker.mlops.workflow.steps import CacheConfig

    return CacheConfig(enable_caching=cfg.caching.enabled, expire_after=cfg.caching.expire_after)


def retry_policies(cfg: PipelineConfig) -> list[Any]:
    """Step-level faults (throttling, service faults) and job-level faults are separate
    policy types in SageMaker; split the configured list accordingly."""
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )

    retry = cfg.retry
    common = {
        "max_attempts": retry.max_attempts,
        "interval_seconds": retry.interval_seconds,
        "backoff_rate": retry.backoff_rate,
    }
    # By value through a dict: the SDK's enum metaclass maps Enum(value) to its default member.
    step_enum = {member.value: member for member in StepExceptionTypeEnum}
    job_enum = {member.value: member for member in SageMakerJobExceptionTypeEnum}
    step_types = [step_enum[name] for name in retry.on if name in step_enum]
    job_types = [job_enum[name] for name in retry.on if name in job_enum]
    policies: list[Any] = []
    if step_types:
        policies.append(StepRetryPolicy(exception_types=step_types, **common))
    if job_types:
        policies.append(SageMakerJobStepRetryPolicy(exception_types=job_types, **common))
    return policies


def network_config(cfg: PipelineConfig) -> Any:
    from sagemaker.core.network import NetworkConfig

    net = cfg.network
    return NetworkConfig(
        enable_network_isolation=False,  # the jobs must reach MLflow and, optionally, a package index
        security_group_ids=net.security_group_ids or None,
        subnets=net.subnets or None,
        encrypt_inter_container_traffic=net.encrypt_inter_container_traffic,
    )
