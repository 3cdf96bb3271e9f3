"""The VPC: private subnets for the server, database, bridge and SageMaker jobs; S3 through
a gateway endpoint; the AWS APIs through interface endpoints or a NAT; flow logs."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from pipeline.config import InfraSettings

__all__ = ["Network"]

# What the private parts call when there is no NAT: ECS pulls and logs, secrets, the
# SageMaker APIs the bridge and the jobs use, STS for the SDKs.
_INTERFACE_ENDPOINTS = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}


VPC_CIDR = "10.0.0.0/16"  # CDK's default, written out so rules can name it (a token defeats cdk-nag)


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, settings: InfraSettings) -> None:
        super().__init__(scope, construct_id)
        egress = settings.nat_gateways > 0
        subnets = [
            ec2.SubnetConfiguration(
                name="app",
                subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS if egress else ec2.SubnetType.PRIVATE_ISOLATED,
                cidr_mask=22,
            ),
            ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
        ]
        if egress or settings.public_load_balancer:
            subnets.insert(0, ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24))
        flow_log_group = logs.LogGroup(
            self, "FlowLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=RemovalPolicy.RETAIN
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=settings.max_azs,
            nat_gateways=settings.nat_gateways,
            subnet_configuration=subnets,
            flow_logs={
                "all": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.app_subnets = ec2.SubnetSelection(subnet_group_name="app")
        self.data_subnets = ec2.SubnetSelection(subnet_group_name="data")
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        if not egress:
            endpoints = dict(_INTERFACE_ENDPOINTS)
            if settings.tls.mode == "private_ca":  # jobs and the bridge fetch the server's CA certificate
                endpoints["AcmPca"] = ec2.InterfaceVpcEndpointAwsService.PRIVATE_CERTIFICATE_AUTHORITY
            # One group for the endpoints: HTTPS from inside the VPC only.
            group = ec2.SecurityGroup(
                self, "EndpointsSecurityGroup", vpc=self.vpc, description="AWS API endpoints", allow_all_outbound=False
            )
            group.add_ingress_rule(ec2.Peer.ipv4(VPC_CIDR), ec2.Port.tcp(443), "HTTPS from inside the VPC")
            for name, service in endpoints.items():
                self.vpc.add_interface_endpoint(
                    name,
                    service=service,
                    subnets=self.app_subnets,
                    private_dns_enabled=True,
                    open=False,
                    security_groups=[group],
                )
