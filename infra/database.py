"""The MLflow backend store: RDS MySQL 8, encrypted, utf8mb4, private, kept on deletion.

Its logs go to CloudWatch with a retention: the log groups RDS would create on first
export (`/aws/rds/instance/<id>/<log>`, RDS User Guide, "Publishing MySQL logs to
Amazon CloudWatch Logs") are declared here first, so they never live forever. Only logs
the parameter group turns on are exported: the error log, and the slow query log
(queries over 2 s). The general log is left off: it would record every statement,
including the auth store's password-hash writes.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from constructs import Construct

from pipeline.config import InfraSettings

__all__ = ["Database"]

ENGINE = rds.DatabaseInstanceEngine.mysql(version=rds.MysqlEngineVersion.VER_8_4_7)
EXPORTED_LOGS = ("error", "slowquery")
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS


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
        self.secret.apply_removal_policy(RemovalPolicy.RETAIN)  # the retained database needs it
        identifier = f"{settings.name}-mlflow"
        self.log_groups = [
            logs.LogGroup(
                self,
                f"{log.capitalize()}Log",
                log_group_name=f"/aws/rds/instance/{identifier}/{log}",
                retention=LOG_RETENTION,
                removal_policy=RemovalPolicy.RETAIN,
            )
            for log in EXPORTED_LOGS
        ]
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
                "slow_query_log": "1",
                "long_query_time": "2",
                "log_output": "FILE",  # CloudWatch export reads the log files
            },
        )
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            engine=ENGINE,
            instance_identifier=identifier,
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
            cloudwatch_logs_exports=list(EXPORTED_LOGS),
            auto_minor_version_upgrade=True,
        )
        for group in self.log_groups:  # exist before RDS first writes to them
            self.instance.node.add_dependency(group)
