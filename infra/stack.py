"""The whole system in one stack: network, artifact store, database, tracking service,
SageMaker roles, the bridge, and outputs the pipeline config consumes."""

from __future__ import annotations

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.alarms import AlarmTopic
from infra.artifact_store import ArtifactStore, grant_other_accounts_model_reads, key_in_bucket
from infra.bridge import BridgeFunction, ExecutionRecorderSettings
from infra.database import Database
from infra.network import Network
from infra.promotion_roles import PromotionRoles
from infra.roles import Roles
from infra.tls import listener_port
from infra.tracking_service import TrackingService, service_user_secret
from pipeline.config import InfraSettings, PipelineConfig

__all__ = ["MlopsStack"]


class MlopsStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, cfg: PipelineConfig, settings: InfraSettings, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        network = Network(self, "Network", settings)
        store = ArtifactStore(self, "ArtifactStore")
        database = Database(self, "Database", vpc=network.vpc, subnets=network.data_subnets, settings=settings)
        pipeline_user = service_user_secret(self, "PipelineMlflowUser", "pipeline")
        bridge_username = "mlflow-bridge"
        bridge_user = service_user_secret(self, "BridgeMlflowUser", bridge_username)
        tracking = TrackingService(
            self,
            "Tracking",
            network=network,
            database=database,
            store=store,
            users={"pipeline": pipeline_user, "bridge": bridge_user},
            settings=settings,
            # the bridge writes versions, aliases and stages of the model it syncs, even when
            # someone else created that registered model first (default permission is READ)
            model_managers={bridge_username: [cfg.mlflow.registered_model]},
        )
        groups = [cfg.registration.model_package_group]
        ca_arn = tracking.tls.ca_arn
        alarms = AlarmTopic(self, "Alarms", email=settings.alarm_email)
        roles = Roles(
            self,
            "Roles",
            bucket=store.bucket,
            pipeline_prefix=cfg.aws.prefix,
            pipeline_name=cfg.pipeline.name,
            package_groups=groups,
            pipeline_user_secret=pipeline_user,
            vpc=network.vpc,
            server_ca_arn=ca_arn,
            batch_output_key=key_in_bucket(cfg.batch_output_uri, cfg.aws.default_bucket),
        )
        jobs_security_group = ec2.SecurityGroup(
            self, "JobsSecurityGroup", vpc=network.vpc, description="SageMaker jobs"
        )
        bridge = BridgeFunction(
            self,
            "Bridge",
            network=network,
            tracking_uri=tracking.url,
            mlflow_user=bridge_user,
            package_groups=groups,
            registered_model=cfg.mlflow.registered_model,
            endpoint_role=roles.endpoint_role,
            settings=settings,
            alarms=alarms.topic,
            server_ca_arn=ca_arn,
            stages=cfg.deployment.stages,
            recorder=ExecutionRecorderSettings(
                pipelines=[cfg.pipeline.name, cfg.batch_pipeline_name],
                experiment=cfg.mlflow.experiment,
                mlflow_user=pipeline_user,
            ),
        )
        other_accounts = [s.endpoint.account for s in cfg.deployment.stages if s.endpoint and s.endpoint.account]
        if other_accounts:
            grant_other_accounts_model_reads(store.bucket, cfg.aws.prefix, other_accounts)
        if settings.promotion_roles:
            promotion = PromotionRoles(self, "Promotion", group=groups[0], stages=cfg.deployment.stages)
            outputs_extra = {
                "DataScientistRoleArn": (promotion.data_scientist.role_arn, "may propose to the first stage"),
                "ReleaseRoleArn": (promotion.release.role_arn, "may move packages through every stage"),
            }
        else:
            outputs_extra = {}
        port = listener_port(settings)
        for peer, what in ((jobs_security_group, "SageMaker jobs"), (bridge.security_group, "the bridge")):
            tracking.load_balancer.connections.allow_from(peer, ec2.Port.tcp(port), f"{what} to MLflow")

        outputs = {
            "TrackingUri": (tracking.url, "mlflow.tracking_uri"),
            "ArtifactBucket": (store.bucket.bucket_name, "aws.default_bucket"),
            "PipelineRoleArn": (roles.pipeline_role.role_arn, "aws.role_arn"),
            "EndpointRoleArn": (roles.endpoint_role.role_arn, "bridge endpoint role"),
            "BatchModelRoleArn": (roles.batch_model_role.role_arn, "batch.model_role_arn"),
            # what a stage's deploy role in another account must trust (sts:AssumeRole)
            "BridgeRoleArn": (bridge.role.role_arn, "the bridge's role, for other accounts' trust policies"),
            "PrivateSubnets": (
                Fn.join(",", network.vpc.select_subnets(subnet_group_name="app").subnet_ids),
                "network.subnets",
            ),
            "JobSecurityGroup": (jobs_security_group.security_group_id, "network.security_group_ids"),
            "PipelineMlflowSecretArn": (pipeline_user.secret_arn, "mlflow.credentials.secret_arn"),
            "BridgeDeadLetterQueue": (bridge.dead_letters.queue_url, "failed bridge events"),
            "AlarmTopicArn": (alarms.topic.topic_arn, "subscribe to the stack's alarms"),
            "LoadBalancerDnsName": (tracking.load_balancer.load_balancer_dns_name, "where tls.domain_name points"),
        }
        if ca_arn:
            outputs["TrackingCaArn"] = (ca_arn, "mlflow.server_ca_arn")
        outputs.update(outputs_extra)
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)
