"""TLS for the tracking server's load balancer, by `infra.tls.mode` (pipeline.config.TlsSettings).

- private_ca: an ACM private certificate for `domain_name`, issued by an ACM Private CA
  (`private_ca_arn`, or a root CA this stack creates and activates), and a Route 53
  private hosted zone of exactly that name, in the VPC, pointing at the load balancer.
  No public domain needed; clients trust the CA by its ARN (`ca_arn`: jobs through
  `mlflow.server_ca_arn`, the bridge through BRIDGE_MLFLOW_CA_ARN).
- certificate: your ACM certificate for `domain_name` (public, or imported); you point the
  name at the load balancer's DNS name (output `LoadBalancerDnsName`).
- none: no certificate; the listener is plain HTTP (an explicit opt-out).

Sources: ACM User Guide, "Requesting a private certificate" (ACM issues and renews private
certificates from a general-purpose CA when ACM may use it: the CA permission below);
ACM Private CA User Guide, "Creating a private CA" (root CA, self-signed CA certificate
from the RootCACertificate/V1 template, activation).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_acmpca as acmpca
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from constructs import Construct

from pipeline.config import InfraSettings

__all__ = ["TrackingTls", "listener_port"]


def listener_port(settings: InfraSettings) -> int:
    """443 with a certificate, 80 only when TLS is opted out."""
    return 80 if settings.tls.mode == "none" else 443


class TrackingTls(Construct):
    """`certificate` (None with mode none), `domain_name` (the load balancer's DNS name with
    mode none), `ca_arn` (private_ca only) and `url`."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: InfraSettings, vpc: ec2.IVpc) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        self.vpc = vpc
        self.ca_arn: str | None = None
        self.activation: Construct | None = None  # of the root CA this stack creates
        self.certificate: acm.ICertificate | None = None
        self.url = ""  # set by `serve`
        self.domain_name = settings.tracking_domain
        tls = settings.tls
        if tls.mode == "certificate":
            self.certificate = acm.Certificate.from_certificate_arn(self, "Certificate", tls.certificate_arn or "")
        elif tls.mode == "private_ca":
            self.ca_arn = tls.private_ca_arn or self._root_ca()
            authority = acmpca.CertificateAuthority.from_certificate_authority_arn(self, "Authority", self.ca_arn)
            self.certificate = acm.PrivateCertificate(
                self, "Certificate", domain_name=self.domain_name or "", certificate_authority=authority
            )
            if self.activation is not None:
                self.certificate.node.add_dependency(self.activation)

    def _root_ca(self) -> str:
        name = self.settings.name
        ca = acmpca.CfnCertificateAuthority(
            self,
            "RootCa",
            type="ROOT",
            key_algorithm="EC_prime256v1",
            signing_algorithm="SHA256WITHECDSA",
            subject=acmpca.CfnCertificateAuthority.SubjectProperty(common_name=f"{name} MLflow private CA"),
            usage_mode="GENERAL_PURPOSE",  # ACM issues and renews load-balancer certificates only from these
        )
        partition = Stack.of(self).partition
        certificate = acmpca.CfnCertificate(
            self,
            "RootCaCertificate",
            certificate_authority_arn=ca.attr_arn,
            certificate_signing_request=ca.attr_certificate_signing_request,
            signing_algorithm="SHA256WITHECDSA",
            template_arn=f"arn:{partition}:acm-pca:::template/RootCACertificate/V1",
            validity=acmpca.CfnCertificate.ValidityProperty(type="YEARS", value=10),
        )
        self.activation = acmpca.CfnCertificateAuthorityActivation(
            self, "RootCaActivation", certificate_authority_arn=ca.attr_arn, certificate=certificate.attr_certificate
        )
        acmpca.CfnPermission(
            self,
            "AcmMayRenew",
            certificate_authority_arn=ca.attr_arn,
            actions=["IssueCertificate", "GetCertificate", "ListPermissions"],
            principal="acm.amazonaws.com",
        )
        return ca.attr_arn

    def serve(self, load_balancer: elbv2.ApplicationLoadBalancer) -> None:
        """Point the private name at the load balancer (private_ca), and fix the URL."""
        if self.settings.tls.mode == "private_ca":
            zone = route53.PrivateHostedZone(self, "Zone", zone_name=self.domain_name or "", vpc=self.vpc)
            route53.ARecord(
                self,
                "Alias",
                zone=zone,
                target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(load_balancer)),
            )
        if self.domain_name is None:
            self.domain_name = load_balancer.load_balancer_dns_name
            self.url = f"http://{self.domain_name}"
        else:
            self.url = f"https://{self.domain_name}"
