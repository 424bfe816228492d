"""`mlops preflight STACK` against moto's STS and EC2, a fake Service Quotas client (moto mocks only
the `vpc` quotas) and fake `docker`/`aws`/`pulumi` executables on PATH: no network, no AWS account."""

from __future__ import annotations

import ipaddress
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from moto import mock_aws
from typer.testing import CliRunner

from cli import preflight
from cli.main import app
from cli.preflight import Check, Probes, run_preflight
from infra.offline_plan import PROJECT_ROOT

PROJECT = "mlops-platform"
DEPLOYER_IP = "52.94.76.10"
STANDARD, G_AND_VT = "L-1216C47A", "L-DB2E81BA"


class FakeQuotas:
    """Applied values by quota code; codes without one answer as AWS does (NoSuchResourceException)."""

    def __init__(self, applied: dict[str, float], defaults: dict[str, float] | None = None) -> None:
        self.applied = applied
        self.defaults = defaults or {}

    def get_service_quota(self, *, ServiceCode: str, QuotaCode: str) -> dict[str, Any]:
        assert ServiceCode == "ec2"
        if QuotaCode not in self.applied:
            raise ClientError({"Error": {"Code": "NoSuchResourceException", "Message": "no"}}, "GetServiceQuota")
        return {"Quota": {"QuotaCode": QuotaCode, "Value": self.applied[QuotaCode]}}

    def get_aws_default_service_quota(self, *, ServiceCode: str, QuotaCode: str) -> dict[str, Any]:
        return {"Quota": {"QuotaCode": QuotaCode, "Value": self.defaults[QuotaCode]}}


def _script(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only fake docker (with buildx), aws and pulumi."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(
        bin_dir,
        "docker",
        '[ "$1 $2" = "buildx version" ] && echo "github.com/docker/buildx v0.19.3 48d6a39" && exit 0; exit 1',
    )
    _script(bin_dir, "aws", 'echo "aws-cli/2.22.35 Python/3.12.6 Linux/6.8 exe/x86_64"')
    _script(bin_dir, "pulumi", 'echo "v3.210.0"')
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def stacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped stack files, dev and staging with a real deployer CIDR instead of the placeholder."""
    directory = tmp_path / "stacks"
    directory.mkdir()
    for path in (PROJECT_ROOT / "stacks").glob("Pulumi.*.yaml"):
        document = yaml.safe_load(path.read_text())
        if document["config"][f"{PROJECT}:deployerAccess"] == "public":
            document["config"][f"{PROJECT}:clusterPublicAccessCidrs"] = [f"{DEPLOYER_IP}/32", "52.95.0.0/16"]
        (directory / path.name).write_text(yaml.safe_dump(document))
    monkeypatch.setattr("infra.offline_plan.STACKS_DIR", directory)
    return directory


def _probes(
    quotas: FakeQuotas,
    public_ip: str | None = DEPLOYER_IP,
    source: str | None = "192.168.1.20",
) -> Probes:
    return Probes(
        quotas=lambda session: quotas,
        public_ip=lambda: public_ip,
        source_address_towards=lambda destination: ipaddress.IPv4Address(source) if source else None,
        # A fixed day: the stacks' versions leave standard support on dates, and a test must not.
        today=date(2026, 12, 1),
    )


def _by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


ENOUGH = FakeQuotas({STANDARD: 64, G_AND_VT: 64})


@pytest.mark.usefixtures("aws", "tools", "stacks")
def test_a_ready_dev_deploy_passes_every_check() -> None:
    checks = run_preflight("dev", _probes(ENOUGH))
    assert [check.status for check in checks] == ["ok"] * 8, "\n".join(check.line() for check in checks)
    found = _by_name(checks)
    assert found["config"].detail.startswith("stack 'dev' is valid, no placeholders; Kubernetes 1.35")
    assert "arn:aws:sts::123456789012:user/moto (account 123456789012)" in found["aws identity"].detail
    # system: 4 x m6i.large (2 vCPUs); gpu-t4: 2 x g4dn.xlarge (4 vCPUs)
    assert "the pools need up to 8 (system 8)" in found[f"ec2 quota {STANDARD}"].detail
    assert "the pools need up to 8 (gpu-t4 8)" in found[f"ec2 quota {G_AND_VT}"].detail
    assert f"{DEPLOYER_IP} is in clusterPublicAccessCidrs" in found["api access"].detail
    assert found["docker buildx"].detail == "github.com/docker/buildx v0.19.3 48d6a39"
    assert found["pulumi cli"].detail == "v3.210.0"
    assert not preflight.failed(checks)


@pytest.mark.usefixtures("aws", "tools", "stacks")
def test_a_fresh_accounts_zero_gpu_quota_fails_prod_with_the_increase_to_request() -> None:
    checks = _by_name(run_preflight("prod", _probes(FakeQuotas({STANDARD: 64}, defaults={G_AND_VT: 0}))))
    gpu = checks[f"ec2 quota {G_AND_VT}"]
    assert gpu.status == "FAIL"
    # gpu-t4: 6 x g4dn.2xlarge (8 vCPUs, the pool's largest type) = 48, one node at creation; gpu-a10g: 4 x 4
    assert "'Running On-Demand G and VT instances' is 0 vCPUs in eu-west-1" in gpu.detail
    assert "the pools need up to 64 (gpu-t4 48, gpu-a10g 16; 8 at creation)" in gpu.detail
    assert (
        f"aws service-quotas request-service-quota-increase --service-code ec2 --quota-code {G_AND_VT} "
        "--desired-value 64 --region eu-west-1" in gpu.detail
    )
    assert checks[f"ec2 quota {STANDARD}"].status == "ok"  # system: 9 x m6i.xlarge = 36 of 64


@pytest.mark.usefixtures("aws", "tools", "stacks")
def test_prod_from_outside_its_vpc_fails_with_the_bootstrap_command() -> None:
    api = _by_name(run_preflight("prod", _probes(ENOUGH, source="192.168.1.20")))["api access"]
    assert api.status == "FAIL"
    assert "deployerAccess is private and this machine's address towards the VPC is 192.168.1.20" in api.detail
    assert (
        "pulumi up --exclude 'urn:pulumi:prod::mlops-platform::mlops:platform:Platform$mlops:cluster:Cluster"
        "$pulumi:providers:kubernetes::mlops-eks-k8s' --exclude-dependents"
    ) in api.detail


@pytest.mark.usefixtures("aws", "tools", "stacks")
def test_prod_from_a_runner_inside_its_vpc_reaches_the_private_endpoint() -> None:
    api = _by_name(run_preflight("prod", _probes(ENOUGH, source="10.30.4.5")))["api access"]
    assert (api.status, api.detail) == (
        "ok",
        "this machine (10.30.4.5) is inside vpcCidr 10.30.0.0/16: the private endpoint is reachable",
    )


@pytest.mark.usefixtures("aws", "tools", "stacks")
def test_a_public_ip_outside_the_deployer_cidrs_fails_and_an_unknown_one_says_so() -> None:
    outside = _by_name(run_preflight("staging", _probes(ENOUGH, public_ip="18.130.0.5")))["api access"]
    assert outside.status == "FAIL"
    assert "18.130.0.5 is not in clusterPublicAccessCidrs (52.94.76.10/32, 52.95.0.0/16): add 18.130.0.5/32" in (
        outside.detail
    )
    checks = run_preflight("staging", _probes(ENOUGH, public_ip=None))
    unknown = _by_name(checks)["api access"]
    assert unknown.status == "unknown" and "could not learn this machine's public IP" in unknown.detail
    assert not preflight.failed(checks), "unknown is reported, not failed"


@pytest.mark.usefixtures("aws", "stacks")
def test_missing_or_broken_tools_each_fail_with_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    checks = _by_name(run_preflight("dev", _probes(ENOUGH)))
    assert checks["docker buildx"].status == checks["aws cli"].status == checks["pulumi cli"].status == "FAIL"
    assert "`aws eks get-token`" in checks["aws cli"].detail
    _script(empty, "docker", 'echo "docker: unknown command: docker buildx" >&2; exit 1')
    docker = _by_name(run_preflight("dev", _probes(ENOUGH)))["docker buildx"]
    assert docker.status == "FAIL"
    assert docker.detail.startswith("`docker buildx version` failed: install or enable the buildx plugin")


@pytest.mark.usefixtures("tools", "stacks")
def test_no_credentials_fails_identity_and_skips_the_quotas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    checks = _by_name(run_preflight("dev", _probes(ENOUGH)))
    assert checks["aws identity"].status == "FAIL"
    assert "no usable AWS credentials" in checks["aws identity"].detail
    assert checks["ec2 quotas"] == Check("ec2 quotas", "skip", "needs AWS credentials")


@pytest.mark.usefixtures("aws", "tools")
def test_the_shipped_placeholder_fails_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "default_probes", lambda public_ip=None: _probes(ENOUGH))
    result = CliRunner().invoke(app, ["preflight", "dev"])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "FAIL    config: stack 'dev': mlops-platform:clusterPublicAccessCidrs: 203.0.113.0/24 is a documentation range"
    )
    assert "skip    ec2 quotas: needs a valid config" in lines
    assert "skip    api access: needs a valid config" in lines


@pytest.mark.usefixtures("aws", "tools", "stacks")
def test_the_command_prints_one_line_per_check_and_exits_0_when_all_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight, "default_probes", lambda public_ip=None: _probes(ENOUGH, public_ip=public_ip))
    result = CliRunner().invoke(app, ["preflight", "dev", "--public-ip", DEPLOYER_IP])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 8
    assert all(line.startswith("ok ") for line in result.output.splitlines())


def test_the_real_session_factory_builds_a_regional_session() -> None:
    session = Probes().session("eu-west-1")
    assert isinstance(session, boto3.Session) and session.region_name == "eu-west-1"
