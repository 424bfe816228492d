"""Deterministic stand-ins for AWS and the other providers, so the program runs with no cloud.

Only what a provider computes (ARNs, endpoints, generated names) is invented here, and always the
same way, so two renders of the same program and config give byte-identical plans.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"


def _digest(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()


class OfflineMocks(pulumi.runtime.Mocks):
    """Answers resource registrations and provider function calls like a fresh AWS account would."""

    def __init__(self, region: str) -> None:
        self.region = region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        name = args.name
        state: dict[str, Any] = dict(args.inputs)
        short_type = args.typ.split(":")[-1]
        resource_id = f"{name}-id"
        state.setdefault("arn", f"arn:aws:mock:{self.region}:{ACCOUNT_ID}:{short_type.lower()}/{name}")
        computed = self._computed(args.typ, name, args.inputs)
        state.update(computed)
        return str(computed.get("id", resource_id)), state

    def _computed(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        region = self.region
        match typ:
            case "aws:s3/bucket:Bucket":
                bucket = f"{name}-{_digest(name)[:8]}"
                return {"id": bucket, "bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
            case "aws:kms/key:Key":
                key_id = _digest("kms", name)[:32]
                return {"keyId": key_id, "arn": f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/{key_id}"}
            case "aws:iam/role:Role":
                role_name = inputs.get("name", f"{name}-{_digest(name)[:7]}")
                return {"name": role_name, "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{role_name}"}
            case "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
                host = str(inputs.get("url", "")).removeprefix("https://")
                return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}"}
            case "aws:eks/cluster:Cluster":
                cluster_id = _digest("eks", name)[:32].upper()
                return {
                    "endpoint": f"https://{cluster_id}.gr7.{region}.eks.amazonaws.com",
                    "certificateAuthority": {"data": "bW9jay1jZXJ0aWZpY2F0ZS1hdXRob3JpdHk="},
                    "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{cluster_id}"}]}],
                    "vpcConfig": {**inputs.get("vpcConfig", {}), "clusterSecurityGroupId": f"sg-{_digest(name)[:17]}"},
                }
            case "aws:eks/nodeGroup:NodeGroup":
                return {
                    "nodeGroupName": name,
                    "resources": [{"autoscalingGroups": [{"name": f"eks-{name}-{_digest(name)[:8]}"}]}],
                }
            case "aws:ec2/launchTemplate:LaunchTemplate":
                return {"id": f"lt-{_digest(name)[:17]}", "latestVersion": 1}
            case "aws:ec2/securityGroup:SecurityGroup":
                return {"id": f"sg-{_digest(name)[:17]}"}
            case "aws:rds/instance:Instance":
                return {
                    "address": f"{name}.{_digest(name)[:12]}.{region}.rds.amazonaws.com",
                    "masterUserSecrets": [
                        {"secretArn": f"arn:aws:secretsmanager:{region}:{ACCOUNT_ID}:secret:rds!{name}"}
                    ],
                }
            case "aws:ecr/repository:Repository":
                repository = inputs.get("name", name)
                return {
                    "registryId": ACCOUNT_ID,
                    "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{repository}",
                }
            case "docker-build:index:Image":
                tag = str((inputs.get("tags") or [name])[0])
                digest = f"sha256:{_digest('image', tag)}"
                return {"digest": digest, "ref": f"{tag.rsplit(':', 1)[0]}@{digest}"}
            case "random:index/randomId:RandomId":
                # What the provider draws once and keeps in state: here derived from the name instead.
                raw = bytes.fromhex(_digest("random-id", name)[: 2 * int(inputs.get("byteLength", 8))])
                return {
                    "hex": raw.hex(),
                    "b64Url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
                    "dec": str(int.from_bytes(raw)),
                }
            case "pulumi-python:dynamic:Resource" if str(inputs.get("url", "")).endswith("-bundle.pem"):
                # infra/rds_ca_bundle.py downloads the bundle at `pulumi up`; offline there is none.
                pem = f"(the RDS CA bundle from {inputs['url']}, fetched at pulumi up)"
                return {"pem": pem, "sha256": hashlib.sha256(pem.encode()).hexdigest()}
            case _:
                return {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        region = self.region
        match args.token:
            case "aws:index/getAvailabilityZones:getAvailabilityZones":
                letters = "abcdef"
                return {
                    "names": [f"{region}{letter}" for letter in letters],
                    "zoneIds": [f"{region[:3]}{index}-az{index}" for index in range(len(letters))],
                }, []
            case "aws:eks/getAddonVersion:getAddonVersion":
                return {"version": f"{args.args['addonName']}-default-for-{args.args['kubernetesVersion']}"}, []
            case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
                return {
                    "userName": "AWS",
                    "password": "offline-plan-token",
                    "proxyEndpoint": f"https://{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com",
                }, []
            case "aws:index/getCallerIdentity:getCallerIdentity":
                return {
                    "accountId": ACCOUNT_ID,
                    "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
                    "userId": "OFFLINE",
                }, []
            case "aws:index/getPartition:getPartition":
                return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, []
            case "aws:index/getRegion:getRegion":
                return {"name": region, "region": region}, []
            case _:
                # A new provider function needs a deliberate answer here, not a silent empty one.
                raise NotImplementedError(f"the offline plan has no mock for provider function {args.token}")
