"""The MLflow tracking server on ECS Fargate behind a load balancer (internal by default).

Secrets reach the container as ECS secrets (resolved by the agent at start, never part of
the task definition's environment) and the entrypoint assembles them.
"""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.artifact_store import ArtifactStore, grant_prefix
from infra.database import Database
from infra.database_connections import pool_size
from infra.network import Network
from infra.tls import TrackingTls, listener_port
from pipeline.config import InfraSettings

__all__ = ["TrackingService", "service_user_secret"]

SERVER_DIR = Path(__file__).parent / "mlflow_server"
PORT = 5000


def pool_environment(settings: InfraSettings) -> dict[str, str]:
    """MLflow's SQLAlchemy pool settings, sized to the database (infra/database_connections.py)."""
    size = str(pool_size(settings.database_instance_type, settings.server_max_tasks, settings.server_workers))
    return {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": size, "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": size}


def service_user_secret(scope: Construct, construct_id: str, username: str) -> secretsmanager.Secret:
    """A generated {"username", "password"} secret for a non-admin MLflow user (retained
    with the stack, like the database whose auth store holds the user)."""
    return secretsmanager.Secret(
        scope,
        construct_id,
        description=f"MLflow user {username}",
        generate_secret_string=secretsmanager.SecretStringGenerator(
            secret_string_template=f'{{"username": "{username}"}}',
            generate_string_key="password",
            exclude_punctuation=True,
            password_length=32,
        ),
        removal_policy=RemovalPolicy.RETAIN,
    )


class TrackingService(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        network: Network,
        database: Database,
        store: ArtifactStore,
        users: dict[str, secretsmanager.ISecret],
        settings: InfraSettings,
        model_managers: dict[str, list[str]] | None = None,
    ) -> None:
        """`model_managers`: MLflow user name -> registered model names it gets MANAGE on
        at every server start (prepare.py), whoever created the model."""
        super().__init__(scope, construct_id)
        vpc = network.vpc
        self.admin_password = secretsmanager.Secret(
            self,
            "AdminPassword",
            description="MLflow basic-auth admin password",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=32),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.flask_secret = secretsmanager.Secret(
            self,
            "FlaskSecretKey",
            description="MLflow server session signing key",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
            removal_policy=RemovalPolicy.RETAIN,
        )
        cluster = ecs.Cluster(self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
        task = ecs.FargateTaskDefinition(
            self, "Task", cpu=settings.server_cpu, memory_limit_mib=settings.server_memory_mb
        )
        log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.RETAIN
        )
        secrets = {
            "DB_USERNAME": ecs.Secret.from_secrets_manager(database.secret, "username"),
            "DB_PASSWORD": ecs.Secret.from_secrets_manager(database.secret, "password"),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(self.admin_password),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": ecs.Secret.from_secrets_manager(self.flask_secret),
            **{f"MLFLOW_USER_SECRET_{name.upper()}": ecs.Secret.from_secrets_manager(s) for name, s in users.items()},
        }
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            internet_facing=settings.public_load_balancer,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
            if settings.public_load_balancer
            else network.app_subnets,
            drop_invalid_header_fields=True,
        )
        self.load_balancer.log_access_logs(store.access_logs, prefix="load-balancer")
        self.tls = TrackingTls(self, "Tls", settings=settings, vpc=vpc)
        self.tls.serve(self.load_balancer)
        hosts = [*settings.allowed_hosts, self.load_balancer.load_balancer_dns_name]
        if self.tls.domain_name and self.tls.domain_name not in hosts:
            hosts.append(self.tls.domain_name)
        server_tls = "none" if settings.tls.mode == "none" else "self_signed"
        task.add_container(
            "mlflow",
            image=ecs.ContainerImage.from_asset(str(SERVER_DIR)),
            port_mappings=[ecs.PortMapping(container_port=PORT)],
            environment={
                "DB_HOST": database.instance.db_instance_endpoint_address,
                "DB_PORT": database.instance.db_instance_endpoint_port,
                "DB_NAME": Database.NAME,
                "ARTIFACTS_DESTINATION": store.mlflow_uri,
                "WORKERS": str(settings.server_workers),
                **pool_environment(settings),
                "ALLOWED_HOSTS": ",".join(hosts),
                "PORT": str(PORT),
                "SERVER_TLS": server_tls,
                "MLFLOW_REGISTERED_MODEL_MANAGERS": json.dumps(model_managers or {}, sort_keys=True),
            },
            secrets=secrets,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="mlflow", log_group=log_group),
        )
        grant_prefix(store.bucket, task.task_role, ArtifactStore.MLFLOW_PREFIX, write=True)
        self.service_security_group = ec2.SecurityGroup(
            self, "ServiceSecurityGroup", vpc=vpc, description="MLflow server tasks"
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=task,
            desired_count=settings.server_min_tasks,
            vpc_subnets=network.app_subnets,
            security_groups=[self.service_security_group],
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            health_check_grace_period=Duration.seconds(180),
            min_healthy_percent=100,
        )
        database.security_group.add_ingress_rule(
            self.service_security_group, ec2.Port.tcp(3306), "MLflow server to its database"
        )
        certificate = self.tls.certificate
        if certificate is None:  # tls.mode none: the explicit opt-out
            listener = self.load_balancer.add_listener("Http", port=80, open=False)
        else:
            listener = self.load_balancer.add_listener(
                "Https",
                port=listener_port(settings),
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                # Public: anyone may reach the listener (basic auth guards every call);
                # internal: only the security groups the stack allows (jobs, bridge).
                open=settings.public_load_balancer,
            )
        self.url = self.tls.url
        target_protocol = elbv2.ApplicationProtocol.HTTP if server_tls == "none" else elbv2.ApplicationProtocol.HTTPS
        listener.add_targets(
            "Mlflow",
            port=PORT,
            protocol=target_protocol,  # HTTPS: the task's own certificate, which the balancer does not verify
            targets=[self.service],
            health_check=elbv2.HealthCheck(
                path="/health", healthy_http_codes="200", protocol=elbv2.Protocol(target_protocol.value)
            ),
            deregistration_delay=Duration.seconds(30),
        )
        scaling = self.service.auto_scale_task_count(
            min_capacity=settings.server_min_tasks, max_capacity=settings.server_max_tasks
        )
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
