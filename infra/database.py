"""The MLflow backend store: RDS MySQL 8, encrypted, utf8mb4, private, kept on deletion."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from constructs import Construct

from pipeline.config import InfraSettings

__all__ = ["Database"]

ENGINE = rds.DatabaseInstanceEngine.mysql(version=rds.MysqlEngineVersion.VER_8_4_7)


class Database(Construct):
    NAME = "mlflow"

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        settings: InfraSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        self.secret = rds.DatabaseSecret(self, "Credentials", username="mlflow")
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="MLflow database", allow_all_outbound=False
        )
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=ENGINE,
            parameters={
                "character_set_server": "utf8mb4",
                "collation_server": "utf8mb4_bin",
                "require_secure_transport": "ON",
            },
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=ENGINE,
            credentials=rds.Credentials.from_secret(self.secret),
            database_name=self.NAME,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            instance_type=ec2.InstanceType(settings.database_instance_type),
            allocated_storage=settings.database_allocated_storage_gb,
            multi_az=settings.database_multi_az,
            storage_encrypted=True,
            publicly_accessible=False,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            backup_retention=Duration.days(7),
            parameter_group=parameters,
            cloudwatch_logs_exports=["error", "general", "slowquery"],
            auto_minor_version_upgrade=True,
        )
