"""`mlops preflight STACK`: what a first `pulumi up` of STACK needs, checked before it starts.

A first deploy that fails half way leaves a VPC, a cluster and databases behind, an hour in. The
usual causes are found here in seconds: stack-file placeholders, no AWS credentials, an EC2 vCPU
quota below what the node pools may launch (a fresh account's G-instance quota is often 0, and prod
keeps a GPU node running), a machine that cannot reach the EKS API the same `up` talks to, and a
missing Docker buildx, `aws` CLI (the kubeconfig runs `aws eks get-token`) or Pulumi CLI.

Each check prints one line: `ok`, `FAIL` with what to do, `unknown` where this machine cannot tell
(said so, not guessed), or `skip` when an earlier failure makes it moot. Exit status 1 on any FAIL.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import subprocess
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal, Protocol, cast

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError

from infra.config import (
    EKS_STANDARD_SUPPORT_ENDS,
    RDS_MYSQL_STANDARD_SUPPORT_ENDS,
    RDS_POSTGRES_STANDARD_SUPPORT_ENDS,
    ConfigError,
    NodePoolConfig,
    PlatformConfig,
    parse_config,
)
from infra.offline_plan import StackNotFound, load_stack_config, render_stack

Status = Literal["ok", "FAIL", "unknown", "skip"]

# EC2 On-Demand vCPU quotas (service code `ec2`) by instance family letters: a fresh account's G/VT
# quota is often 0, the standard one a few dozen vCPUs.
QUOTA_BY_FAMILY: dict[str, tuple[str, str]] = {
    **{
        letter: ("L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances")
        for letter in "acdhimrtz"
    },
    "g": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "vt": ("L-DB2E81BA", "Running On-Demand G and VT instances"),
    "p": ("L-417A185B", "Running On-Demand P instances"),
}
PUBLIC_IP_URL = "https://checkip.amazonaws.com"
"""AWS's own echo of the caller's address, the one the EKS public endpoint sees."""
COMMAND_TIMEOUT_S = 30


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str

    def line(self) -> str:
        return f"{self.status:<7} {self.name}: {self.detail}"


class QuotaReader(Protocol):
    """The two Service Quotas calls used (boto3's `service-quotas` client has both)."""

    def get_service_quota(self, *, ServiceCode: str, QuotaCode: str) -> Mapping[str, Any]: ...

    def get_aws_default_service_quota(self, *, ServiceCode: str, QuotaCode: str) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    output: str


def _run(command: list[str]) -> CommandResult:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return CommandResult(returncode=-1, output=str(error))
    return CommandResult(returncode=completed.returncode, output=(completed.stdout or completed.stderr).strip())


def _public_ip() -> str | None:
    try:
        with urllib.request.urlopen(PUBLIC_IP_URL, timeout=5) as response:
            return response.read().decode().strip() or None
    except OSError:
        return None


def _source_address_towards(destination: ipaddress.IPv4Address) -> ipaddress.IPv4Address | None:
    """The local address this machine would send from to `destination` (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((str(destination), 443))
            return ipaddress.IPv4Address(probe.getsockname()[0])
    except OSError:
        return None


def _quota_reader(session: boto3.Session) -> QuotaReader:
    return cast(QuotaReader, session.client("service-quotas"))


@dataclass(frozen=True)
class Probes:
    """Everything preflight asks the outside world, replaceable in tests."""

    session: Callable[[str | None], boto3.Session] = lambda region: boto3.Session(region_name=region)
    quotas: Callable[[boto3.Session], QuotaReader] = _quota_reader
    public_ip: Callable[[], str | None] = _public_ip
    source_address_towards: Callable[[ipaddress.IPv4Address], ipaddress.IPv4Address | None] = _source_address_towards
    which: Callable[[str], str | None] = shutil.which
    run: Callable[[list[str]], CommandResult] = _run
    today: date | None = None
    """The day support windows are judged on (None: today)."""


def default_probes(public_ip: str | None = None) -> Probes:
    """The real probes; `public_ip` (from --public-ip) replaces asking checkip.amazonaws.com."""
    if public_ip is None:
        return Probes()
    return Probes(public_ip=lambda: public_ip)


# --------------------------------------------------------------------------------------------
# The checks


def check_config(stack: str, probes: Probes) -> tuple[Check, PlatformConfig | None]:
    """The stack file as `pulumi up` reads it: placeholders refused, support windows judged today."""
    try:
        values = load_stack_config(stack).values
        config = parse_config(stack, values.get("aws:region"), values, refuse_placeholders=True, today=probes.today)
    except StackNotFound as error:
        return Check("config", "FAIL", str(error)), None
    except ConfigError as error:
        problems = str(error).splitlines()[1:] or [str(error)]
        return Check("config", "FAIL", f"stack '{stack}': " + "; ".join(p.strip() for p in problems)), None
    versions = (
        f"Kubernetes {config.kubernetes_version} (standard support until "
        f"{EKS_STANDARD_SUPPORT_ENDS[config.kubernetes_version].isoformat()}), "
        f"PostgreSQL {config.postgres.engine_version} (until "
        f"{RDS_POSTGRES_STANDARD_SUPPORT_ENDS[config.postgres.engine_version.split('.')[0]].isoformat()}), "
        f"MySQL {config.mysql.engine_version} (until "
        f"{RDS_MYSQL_STANDARD_SUPPORT_ENDS['.'.join(config.mysql.engine_version.split('.')[:2])].isoformat()})"
    )
    return Check("config", "ok", f"stack '{stack}' is valid, no placeholders; {versions}"), config


def check_identity(session: boto3.Session) -> Check:
    try:
        identity = session.client("sts").get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        return Check(
            "aws identity",
            "FAIL",
            f"no usable AWS credentials ({error}): `aws sso login` or `aws configure` here; in CI assume the "
            "deploy role (OIDC)",
        )
    return Check("aws identity", "ok", f"{identity['Arn']} (account {identity['Account']})")


@dataclass(frozen=True)
class _PoolNeed:
    pool: str
    quota_code: str
    quota_name: str
    at_most: int
    at_start: int


def _family(instance_type: str) -> str:
    match = re.match(r"^([a-z]+)", instance_type)
    return match.group(1) if match else instance_type


def _pools(config: PlatformConfig) -> list[tuple[str, NodePoolConfig]]:
    return [("system", config.system_node_pool), *((pool.name, pool) for pool in config.gpu_node_pools)]


def check_quotas(config: PlatformConfig, session: boto3.Session, probes: Probes) -> list[Check]:
    """Per EC2 vCPU quota: what the pools may launch (maxSize x the largest type's vCPUs) against it."""
    pools = _pools(config)
    instance_types = sorted({name for _, pool in pools for name in pool.instance_types})
    try:
        described = session.client("ec2").describe_instance_types(InstanceTypes=instance_types)["InstanceTypes"]
    except (BotoCoreError, ClientError) as error:
        return [Check("ec2 quotas", "FAIL", f"cannot look up {', '.join(instance_types)} in {config.region}: {error}")]
    vcpus = {item["InstanceType"]: int(item["VCpuInfo"]["DefaultVCpus"]) for item in described}

    needs: list[_PoolNeed] = []
    unmapped: list[str] = []
    for name, pool in pools:
        quotas = {QUOTA_BY_FAMILY.get(_family(instance_type)) for instance_type in pool.instance_types}
        known = {quota for quota in quotas if quota is not None}
        if len(known) != 1 or None in quotas:
            # An unknown family, or types counted against different quotas: not summed by guesswork.
            unmapped.append(f"{name} ({', '.join(pool.instance_types)})")
            continue
        ((code, quota_name),) = known
        largest = max(vcpus[instance_type] for instance_type in pool.instance_types)
        needs.append(_PoolNeed(name, code, quota_name, pool.max_size * largest, pool.initial_size * largest))

    by_quota: dict[str, list[_PoolNeed]] = defaultdict(list)
    for need in needs:
        by_quota[need.quota_code].append(need)
    reader = probes.quotas(session)
    checks = [_quota_check(code, pool_needs, reader, config.region) for code, pool_needs in sorted(by_quota.items())]
    checks += [
        Check("ec2 quotas", "unknown", f"no vCPU quota known for pool {entry}; check its family's quota by hand")
        for entry in unmapped
    ]
    return checks


def _quota_value(reader: QuotaReader, code: str) -> float:
    try:
        return float(reader.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "NoSuchResourceException":
            raise
        # No applied value: the account has the default.
        return float(reader.get_aws_default_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]["Value"])


def _quota_check(code: str, needs: list[_PoolNeed], reader: QuotaReader, region: str) -> Check:
    quota_name = needs[0].quota_name
    at_most = sum(need.at_most for need in needs)
    at_start = sum(need.at_start for need in needs)
    pools = ", ".join(f"{need.pool} {need.at_most}" for need in needs)
    name = f"ec2 quota {code}"
    try:
        value = _quota_value(reader, code)
    except (BotoCoreError, ClientError) as error:
        return Check(
            name,
            "unknown",
            f"cannot read '{quota_name}' ({error}); the pools need up to {at_most} vCPUs ({pools}): check it in "
            "the Service Quotas console (the deploy role needs servicequotas:GetServiceQuota to check it here)",
        )
    have = int(value)
    if have < at_most:
        return Check(
            name,
            "FAIL",
            f"'{quota_name}' is {have} vCPUs in {region}, the pools need up to {at_most} ({pools}; {at_start} at "
            f"creation): aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {code} "
            f"--desired-value {at_most} --region {region}",
        )
    return Check(
        name,
        "ok",
        f"'{quota_name}' is {have} vCPUs, the pools need up to {at_most} ({pools}); instances already running "
        "in the account count against it too",
    )


def kubernetes_provider_urn(stack: str) -> str:
    """The URN of the cluster's Kubernetes provider, for `pulumi up --exclude` (from the offline plan)."""
    plan = render_stack(stack)
    (provider,) = [r for r in plan["resources"] if r["type"] == "pulumi:providers:kubernetes"]
    prefix, project, parent_types, _ = str(provider["parent"]).split("::")
    return f"{prefix}::{project}::{parent_types}$pulumi:providers:kubernetes::{provider['name']}"


def check_api_access(config: PlatformConfig, probes: Probes) -> Check:
    """Can this machine reach the EKS API that `pulumi up` will create and then talk to?"""
    name = "api access"
    if config.deployer_access == "public":
        cidrs = [ipaddress.IPv4Network(cidr) for cidr in config.cluster_public_access_cidrs]
        listed = ", ".join(config.cluster_public_access_cidrs)
        address = probes.public_ip()
        if address is None:
            return Check(
                name,
                "unknown",
                f"could not learn this machine's public IP (no answer from {PUBLIC_IP_URL}; pass --public-ip); "
                f"make sure its egress address is in clusterPublicAccessCidrs ({listed})",
            )
        ip = ipaddress.IPv4Address(address)
        if any(ip in cidr for cidr in cidrs):
            return Check(name, "ok", f"this machine's public IP {ip} is in clusterPublicAccessCidrs ({listed})")
        return Check(
            name,
            "FAIL",
            f"this machine's public IP {ip} is not in clusterPublicAccessCidrs ({listed}): add {ip}/32 to "
            f"stacks/Pulumi.{config.stack}.yaml, or run `pulumi up` from a listed network",
        )
    vpc = ipaddress.IPv4Network(config.vpc_cidr)
    source = probes.source_address_towards(vpc.network_address + 2)  # the VPC's DNS resolver address
    if source is not None and source in vpc:
        return Check(name, "ok", f"this machine ({source}) is inside vpcCidr {vpc}: the private endpoint is reachable")
    seen = f"this machine's address towards the VPC is {source}" if source else "this machine has no route to it"
    return Check(
        name,
        "FAIL",
        f"deployerAccess is private and {seen}, outside vpcCidr {vpc}: run `pulumi up` on a runner inside the VPC "
        "that carries the cluster security group. First deploy: from here, `pulumi up --exclude "
        f"'{kubernetes_provider_urn(config.stack)}' --exclude-dependents` creates the AWS side only; then the full "
        "`pulumi up` from that runner (README, 'First deploy')",
    )


@dataclass(frozen=True)
class Tool:
    name: str
    command: list[str]
    missing: str
    failing: str


TOOLS = (
    Tool(
        "docker buildx",
        ["docker", "buildx", "version"],
        "docker is not on PATH: install Docker with the buildx plugin (pulumi up builds the workload images)",
        "`docker buildx version` failed: install or enable the buildx plugin (pulumi up builds with it)",
    ),
    Tool(
        "aws cli",
        ["aws", "--version"],
        "aws is not on PATH: install AWS CLI v2 (the cluster's kubeconfig gets its tokens from `aws eks get-token`)",
        "`aws --version` failed: reinstall AWS CLI v2 (the kubeconfig runs `aws eks get-token`)",
    ),
    Tool(
        "pulumi cli",
        ["pulumi", "version"],
        "pulumi is not on PATH: install the Pulumi CLI",
        "`pulumi version` failed: reinstall the Pulumi CLI",
    ),
)


def check_tool(tool: Tool, probes: Probes) -> Check:
    if probes.which(tool.command[0]) is None:
        return Check(tool.name, "FAIL", tool.missing)
    result = probes.run(tool.command)
    if result.returncode != 0:
        return Check(tool.name, "FAIL", f"{tool.failing} ({result.output.splitlines()[0] if result.output else ''})")
    return Check(tool.name, "ok", result.output.splitlines()[0] if result.output else "found")


def run_preflight(stack: str, probes: Probes) -> list[Check]:
    config_check, config = check_config(stack, probes)
    checks = [config_check]
    region = config.region if config else load_region(stack)
    session = probes.session(region)
    identity = check_identity(session)
    checks.append(identity)
    if config is None:
        checks += [
            Check("ec2 quotas", "skip", "needs a valid config"),
            Check("api access", "skip", "needs a valid config"),
        ]
    else:
        if identity.status == "ok":
            checks += check_quotas(config, session, probes)
        else:
            checks.append(Check("ec2 quotas", "skip", "needs AWS credentials"))
        checks.append(check_api_access(config, probes))
    checks += [check_tool(tool, probes) for tool in TOOLS]
    return checks


def load_region(stack: str) -> str | None:
    try:
        return load_stack_config(stack).values.get("aws:region")
    except StackNotFound:
        return None


def failed(checks: Iterable[Check]) -> bool:
    return any(check.status == "FAIL" for check in checks)


# --------------------------------------------------------------------------------------------
# The command

app = typer.Typer(no_args_is_help=True)


@app.command("preflight")
def preflight(
    stack: Annotated[str, typer.Argument(help="Stack name: a stacks/Pulumi.<stack>.yaml file.")],
    public_ip: Annotated[
        str | None,
        typer.Option("--public-ip", help=f"This machine's public IP, instead of asking {PUBLIC_IP_URL}."),
    ] = None,
) -> None:
    """Check what a first `pulumi up` of STACK needs: config, AWS identity, EC2 quotas, API access, tools.

    One line per check (ok / FAIL with what to do / unknown / skip). Exit status 1 if any check fails.
    """
    checks = run_preflight(stack, default_probes(public_ip))
    for check in checks:
        typer.echo(check.line())
    if failed(checks):
        raise typer.Exit(1)
