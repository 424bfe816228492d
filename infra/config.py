"""The stack's configuration, parsed once into frozen, validated models.

Every component receives these typed objects instead of reading `pulumi.Config` itself, so a
mistake in a stack file is found here, before any resource is declared, and reported as one
message that names the stack, the key and what was expected.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import get_monitor
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from workloads import catalogue
from workloads.catalogue_entry import ServingScale

PROJECT = "mlops-platform"

# End of AWS *standard* support per version, in UTC. On that day the version moves to paid
# extended support (EKS: an extra charge per cluster hour; RDS: per vCPU hour) and later AWS
# upgrades it itself, so a stack on it is refused. Renew these tables from the sources named;
# the dates were read on 2026-12-01.
#
# Amazon EKS Kubernetes release calendar, "End of standard support"
# (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html; the same dates on
# endoflife.date/amazon-eks). The add-on, AMI and cluster-autoscaler choices were checked for each
# version still in standard support (the autoscaler's tag: infra/cluster_addons.py).
EKS_STANDARD_SUPPORT_ENDS: dict[str, date] = {
    "1.32": date(2026, 3, 23),
    "1.33": date(2026, 7, 29),
    "1.34": date(2026, 12, 2),
    "1.35": date(2027, 3, 27),
}
# "Supported MySQL major versions on Amazon RDS", RDS end of standard support date
# (docs.aws.amazon.com/AmazonRDS/latest/UserGuide/MySQL.Concepts.VersionMgmt.html; the same dates on
# endoflife.date/amazon-rds-mysql). 8.4 is the LTS release that replaces 8.0.
RDS_MYSQL_STANDARD_SUPPORT_ENDS: dict[str, date] = {
    "8.0": date(2026, 7, 31),
    "8.4": date(2029, 7, 31),
}
# "Release calendar for Amazon RDS for PostgreSQL", RDS end of standard support date
# (docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-release-calendar.html;
# 13-16 as endoflife.date/amazon-rds-postgresql records them; 17 from the same source's end of
# extended support, 2033-02-28, minus RDS's three years of extended support).
RDS_POSTGRES_STANDARD_SUPPORT_ENDS: dict[str, date] = {
    "13": date(2026, 2, 28),
    "14": date(2027, 2, 28),
    "15": date(2028, 2, 29),
    "16": date(2029, 2, 28),
    "17": date(2030, 2, 28),
}

# RFC 5737 documentation ranges route nowhere: in a stack file they are the example a user must
# replace with the deployer's own egress address, never a network that could reach the API.
DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(network) for network in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
# A wider range admits networks nobody reviewed (a /8 is ~16 million addresses of a cloud or ISP).
BROADEST_PUBLIC_ACCESS_PREFIX = 16

Environment = Literal["dev", "staging", "prod"]
DeployerAccess = Literal["public", "private"]


class ConfigError(pulumi.RunError):
    """A stack-config mistake. `RunError` makes Pulumi print the message alone, without a trace."""


class KeyedValueError(ValueError):
    """A mistake found across keys, reported at the key to change rather than at the config's root."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _today(info: ValidationInfo) -> date:
    """The date support windows are judged on: injected by tests, else today in UTC (AWS's dates)."""
    injected = (info.context or {}).get("today")
    return injected if isinstance(injected, date) else datetime.now(UTC).date()


def _enforcing_support(info: ValidationInfo) -> bool:
    """A deployment refuses an unsupported version; the offline plan only warns (`support_problems`),
    so a commit that rendered yesterday still renders, and its tests pass, after a date goes by."""
    return bool((info.context or {}).get("enforce_support", True))


def _support_problem(version: str, table: Mapping[str, date], today: date) -> str | None:
    """None while `version` is in standard support on `today`; else what is wrong and what to choose."""
    current = [f"{name} (until {ends.isoformat()})" for name, ends in table.items() if today < ends]
    choose = f"choose {' or '.join(current)}" if current else "no version in the table is supported any more"
    ends = table.get(version)
    if ends is None:
        return f"{version!r} is not in the support table (infra/config.py); {choose}"
    if today >= ends:
        return (
            f"{version} left AWS standard support on {ends.isoformat()} (extended support is billed extra, "
            f"then AWS upgrades it itself); {choose}"
        )
    return None


def _database_major(engine: Literal["postgres", "mysql"], engine_version: str) -> str:
    """`16.4` -> `16` (PostgreSQL majors are one number); `8.4.3` -> `8.4` (MySQL's are two)."""
    parts = engine_version.split(".")
    return parts[0] if engine == "postgres" else ".".join(parts[:2])


def _is_documentation_range(network: ipaddress.IPv4Network) -> bool:
    return any(network.subnet_of(documentation) for documentation in DOCUMENTATION_RANGES)


class _Model(BaseModel):
    # camelCase keys in the stack files (Pulumi's convention), snake_case in Python.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class DatabaseConfig(_Model):
    """Size and version of one RDS instance."""

    engine_version: str = Field(description="Major (or major.minor) engine version, e.g. '16' or '8.0'.")
    instance_class: str = Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$", description="e.g. db.t4g.small")
    allocated_storage_gib: int = Field(ge=20, le=65536)
    max_allocated_storage_gib: int = Field(ge=20, le=65536, description="Storage autoscaling ceiling.")

    @model_validator(mode="after")
    def _storage_ceiling_above_floor(self) -> DatabaseConfig:
        if self.max_allocated_storage_gib < self.allocated_storage_gib:
            raise ValueError("maxAllocatedStorageGib must be >= allocatedStorageGib")
        return self


_POOL_NAME = r"^[a-z][a-z0-9-]{1,30}$"
_LABEL_KEY = re.compile(r"^([a-z0-9.-]+/)?[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$")


class NodePoolConfig(_Model):
    """An EKS managed node group's size and shape."""

    instance_types: list[str] = Field(min_length=1, description="EC2 instance types, first is preferred.")
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    desired_size: int | None = Field(default=None, description="Initial size; the autoscaler owns it after.")
    disk_size_gib: int = Field(default=100, ge=20, le=16384)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels_are_kubernetes_keys(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if not _LABEL_KEY.match(key):
                raise ValueError(f"label key {key!r} is not a valid Kubernetes label key")
        return labels

    @model_validator(mode="after")
    def _sizes_are_ordered(self) -> NodePoolConfig:
        _require_ordered("minSize", self.min_size, "maxSize", self.max_size)
        if self.desired_size is not None and not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"desiredSize ({self.desired_size}) must lie between minSize and maxSize "
                f"({self.min_size}..{self.max_size})"
            )
        return self

    @property
    def initial_size(self) -> int:
        return self.desired_size if self.desired_size is not None else self.min_size


class SystemNodePoolConfig(NodePoolConfig):
    min_size: int = Field(ge=1, description="Platform services need at least one node.")


class GpuNodePoolConfig(NodePoolConfig):
    name: str = Field(pattern=_POOL_NAME, description="Pool name; workloads select it by label.")
    gpus_per_node: int = Field(default=1, ge=1, le=16, description="GPUs of the instance type.")
    time_slicing_replicas: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Pods that share each GPU (NVIDIA time-slicing, infra/gpu_sharing.py); 1 gives each pod its own.",
    )


class TrackingConfig(_Model):
    """How the MLflow tracking server runs in this stack."""

    replicas: int = Field(ge=1, le=20, description="Server pods; 2+ keeps tracking up during node drains.")
    internal_ingress: bool = Field(description="Expose the server through an internal ALB (VPC-only).")


class MonitoringConfig(_Model):
    """How much the stack's Prometheus keeps (infra/monitoring_stack.py)."""

    # At least 3 days: the slowest burn-rate alert reads a 3-day window (observability/burn_rate.py).
    prometheus_retention_days: int = Field(ge=3, le=400, description="Days of samples Prometheus keeps.")
    prometheus_storage_gib: int = Field(ge=10, le=4096, description="Size of Prometheus' EBS volume.")


class ModelSettings(_Model):
    """A catalogue model enabled in this stack, with the stack's overrides of its defaults."""

    min_replicas: int | None = Field(default=None, ge=1, le=100, description="The catalogue's otherwise.")
    max_replicas: int | None = Field(default=None, ge=1, le=100, description="The catalogue's otherwise.")
    in_flight_per_replica: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Requests in flight per replica the autoscaler aims at (GPU pools only); else the catalogue's.",
    )
    gpu_pool: str | None = Field(default=None, description="Serve on this GPU pool (one GPU per pod).")
    auto_promote: bool = Field(
        default=False, description="Scheduled runs move `production` to a better candidate (dev only)."
    )
    training_schedule: str | None = Field(default=None, description="Five-field cron; the catalogue's otherwise.")
    drift_schedule: str | None = Field(default=None, description="Five-field cron; the catalogue's otherwise.")
    max_batch_size: int | None = Field(
        default=None, ge=1, le=4096, description="Serving: most images per forward pass; the catalogue's otherwise."
    )
    max_latency_ms: int | None = Field(
        default=None, ge=1, le=600_000, description="Serving: batching latency budget (ms); the catalogue's otherwise."
    )
    concurrent_batches: int | None = Field(
        default=None, ge=1, le=64, description="Serving: batches in the model at once; the catalogue's otherwise."
    )

    @field_validator("training_schedule", "drift_schedule")
    @classmethod
    def _five_field_cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a five-field cron expression (minute hour day month weekday)")
        return value

    @model_validator(mode="after")
    def _replicas_are_ordered(self) -> ModelSettings:
        if self.min_replicas is not None and self.max_replicas is not None:
            _require_ordered("minReplicas", self.min_replicas, "maxReplicas", self.max_replicas)
        return self

    def serving_scale(self, entry: catalogue.CatalogueEntry) -> ServingScale:
        """The entry's scale with this stack's overrides; CatalogueError when they do not fit together."""
        scale = entry.serving_scale
        return ServingScale(
            min_replicas=scale.min_replicas if self.min_replicas is None else self.min_replicas,
            max_replicas=scale.max_replicas if self.max_replicas is None else self.max_replicas,
            in_flight_per_replica=scale.in_flight_per_replica
            if self.in_flight_per_replica is None
            else self.in_flight_per_replica,
        )


def _require_ordered(low_name: str, low: int, high_name: str, high: int) -> None:
    """A lower bound above its upper bound is a mistake in the stack file: say which two settings."""
    if low > high:
        raise ValueError(f"{low_name} ({low}) must be <= {high_name} ({high})")


Cidr = Annotated[str, Field(description="IPv4 CIDR block")]


def _parse_cidr(value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid IPv4 CIDR block ({exc})") from None


class PlatformConfig(_Model):
    """Everything a stack decides. Field docs are mirrored in Pulumi.yaml's config schema."""

    stack: str = Field(exclude=True)
    region: str = Field(exclude=True, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    environment: Environment
    vpc_cidr: Cidr
    availability_zone_count: int = Field(ge=2, le=6)
    nat_gateways: Literal["single", "perAz"]
    kubernetes_version: str
    cluster_endpoint_public: bool
    cluster_public_access_cidrs: list[Cidr] = Field(default_factory=list)
    # Optional only so that leaving it out gets the message saying what to set, not "missing".
    deployer_access: DeployerAccess | None = None
    cluster_admin_role_arns: list[str] = Field(default_factory=list)
    system_node_pool: SystemNodePoolConfig
    gpu_node_pools: list[GpuNodePoolConfig] = Field(default_factory=list)
    postgres: DatabaseConfig
    mysql: DatabaseConfig
    database_multi_az: bool
    database_deletion_protection: bool
    database_backup_retention_days: int = Field(ge=7, le=35)
    prediction_retention_days: int = Field(ge=1, le=3650)
    noncurrent_version_retention_days: int = Field(ge=1, le=3650)
    tracking: TrackingConfig
    monitoring: MonitoringConfig
    models: dict[str, ModelSettings] = Field(description="Catalogue models enabled in this stack.")
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr_is_private_and_large_enough(cls, value: str) -> str:
        network = _parse_cidr(value)
        if not network.is_private:
            raise ValueError(f"{value} is not a private (RFC 1918) range")
        if network.prefixlen > 20:
            raise ValueError(f"{value} is too small: use a /20 or larger so each AZ gets /23 subnets")
        return value

    @field_validator("cluster_public_access_cidrs")
    @classmethod
    def _access_cidrs_are_valid_and_narrow(cls, values: list[str], info: ValidationInfo) -> list[str]:
        refuse_placeholders = bool((info.context or {}).get("refuse_placeholders"))
        for value in values:
            network = _parse_cidr(value)
            if network.prefixlen == 0:
                raise ValueError("0.0.0.0/0 would open the Kubernetes API to the internet; list your CIDRs")
            if network.prefixlen < BROADEST_PUBLIC_ACCESS_PREFIX:
                raise ValueError(
                    f"{value} is broader than /{BROADEST_PUBLIC_ACCESS_PREFIX}: list only the egress CIDRs of the "
                    "machines that run `pulumi up` and kubectl (a /32 per NAT or VPN address)"
                )
            if _is_documentation_range(network):
                if refuse_placeholders:
                    raise ValueError(
                        f"{value} is a documentation range (RFC 5737), the stack file's placeholder: replace it "
                        "with the public egress CIDR of each machine that runs `pulumi up` (this machine's: "
                        "`curl https://checkip.amazonaws.com`, then <address>/32)"
                    )
            elif not network.is_global:
                raise ValueError(
                    f"{value} is not a public range: the public endpoint only ever sees public source addresses "
                    "(a deployer inside the VPC needs deployerAccess: private)"
                )
        return values

    @field_validator("kubernetes_version")
    @classmethod
    def _kubernetes_version_is_supported(cls, value: str, info: ValidationInfo) -> str:
        problem = _support_problem(value, EKS_STANDARD_SUPPORT_ENDS, _today(info))
        if problem and (_enforcing_support(info) or value not in EKS_STANDARD_SUPPORT_ENDS):
            raise ValueError(problem)
        return value

    @field_validator("cluster_admin_role_arns")
    @classmethod
    def _admin_roles_are_role_arns(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", value):
                raise ValueError(f"{value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        return values

    @field_validator("gpu_node_pools")
    @classmethod
    def _gpu_pool_names_are_unique(cls, pools: list[GpuNodePoolConfig]) -> list[GpuNodePoolConfig]:
        names = [pool.name for pool in pools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate GPU pool name(s): {', '.join(duplicates)}")
        return pools

    @field_validator("models")
    @classmethod
    def _models_are_in_the_catalogue(cls, models: dict[str, ModelSettings]) -> dict[str, ModelSettings]:
        known = catalogue.names()
        unknown = sorted(set(models) - set(known))
        if unknown:
            raise ValueError(f"unknown model(s) {', '.join(unknown)}; the catalogue has {', '.join(known)}")
        return models

    @model_validator(mode="after")
    def _model_pools_exist(self) -> PlatformConfig:
        pools = {pool.name for pool in self.gpu_node_pools}
        for name, settings in self.models.items():
            if settings.gpu_pool is not None and settings.gpu_pool not in pools:
                known = ", ".join(sorted(pools)) or "none"
                raise ValueError(f"models.{name}.gpuPool: no GPU pool {settings.gpu_pool!r} (pools: {known})")
            if catalogue.get(name).gpu and not pools:
                raise ValueError(f"models.{name} trains on a GPU but gpuNodePools is empty")
        return self

    @model_validator(mode="after")
    def _model_scales_fit(self) -> PlatformConfig:
        """The stack's replica bounds with the catalogue's (either may set each), and an in-flight
        target only where it applies: a model on CPU scales on CPU utilisation."""
        for name, settings in self.models.items():
            try:
                settings.serving_scale(catalogue.get(name))
            except catalogue.CatalogueError as error:
                raise KeyedValueError(
                    f"models.{name}", f"{error} (the stack's minReplicas/maxReplicas with the catalogue's)"
                ) from None
            if settings.in_flight_per_replica is not None and settings.gpu_pool is None:
                raise KeyedValueError(
                    f"models.{name}.inFlightPerReplica",
                    f"{name} serves on CPU here (no gpuPool), where it scales on CPU utilisation: "
                    "remove inFlightPerReplica or set gpuPool",
                )
        return self

    @model_validator(mode="after")
    def _database_versions_are_supported(self, info: ValidationInfo) -> PlatformConfig:
        today = _today(info)
        engines: tuple[tuple[Literal["postgres", "mysql"], DatabaseConfig, dict[str, date]], ...] = (
            ("postgres", self.postgres, RDS_POSTGRES_STANDARD_SUPPORT_ENDS),
            ("mysql", self.mysql, RDS_MYSQL_STANDARD_SUPPORT_ENDS),
        )
        for key, database, table in engines:
            major = _database_major(key, database.engine_version)
            problem = _support_problem(major, table, today)
            if problem and (_enforcing_support(info) or major not in table):
                raise KeyedValueError(f"{key}.engineVersion", problem)
        return self

    def support_problems(self, today: date | None = None) -> list[str]:
        """`key: problem` for every version out of AWS standard support on `today` (default: today, UTC)."""
        day = today or datetime.now(UTC).date()
        checks = (
            ("kubernetesVersion", self.kubernetes_version, EKS_STANDARD_SUPPORT_ENDS),
            (
                "postgres.engineVersion",
                _database_major("postgres", self.postgres.engine_version),
                RDS_POSTGRES_STANDARD_SUPPORT_ENDS,
            ),
            (
                "mysql.engineVersion",
                _database_major("mysql", self.mysql.engine_version),
                RDS_MYSQL_STANDARD_SUPPORT_ENDS,
            ),
        )
        return [
            f"{key}: {problem}" for key, version, table in checks if (problem := _support_problem(version, table, day))
        ]

    @model_validator(mode="after")
    def _deployer_reaches_the_api(self) -> PlatformConfig:
        """`pulumi up` talks to the Kubernetes API (infra/cluster.py's provider) in the same run that
        creates the cluster: the stack must say from where, or the first deploy hangs at that point."""
        if self.deployer_access is None:
            raise KeyedValueError(
                "deployerAccess",
                "not set: say how `pulumi up` reaches the EKS API - `public` (from the CIDRs in "
                "clusterPublicAccessCidrs, with clusterEndpointPublic: true) or `private` (from a runner inside "
                f"vpcCidr {self.vpc_cidr}; README, 'First deploy')",
            )
        if self.deployer_access == "public" and not self.cluster_endpoint_public:
            raise KeyedValueError(
                "clusterEndpointPublic",
                "deployerAccess is public, so the API endpoint must be public: set clusterEndpointPublic: true "
                "(limited to clusterPublicAccessCidrs), or deployerAccess: private for a runner inside the VPC",
            )
        if self.cluster_endpoint_public and not self.cluster_public_access_cidrs:
            raise KeyedValueError(
                "clusterPublicAccessCidrs",
                "clusterEndpointPublic is true but clusterPublicAccessCidrs is empty: list the public egress "
                "CIDRs of the machines that run `pulumi up` and kubectl",
            )
        if not self.cluster_endpoint_public and self.cluster_public_access_cidrs:
            raise KeyedValueError(
                "clusterPublicAccessCidrs",
                "set, but the endpoint is private (clusterEndpointPublic: false), so nothing would admit them: "
                "remove them (use []) or make the endpoint public",
            )
        if self.environment == "prod" and self.deployer_access == "public":
            raise KeyedValueError(
                "deployerAccess",
                "public needs a public API endpoint, which prod refuses: set deployerAccess: private and run "
                f"`pulumi up` from a runner inside vpcCidr {self.vpc_cidr} (README, 'First deploy')",
            )
        return self

    @model_validator(mode="after")
    def _environment_guards(self) -> PlatformConfig:
        # Automatic promotion puts an unreviewed candidate in front of users: dev only, by design.
        promoting = sorted(name for name, settings in self.models.items() if settings.auto_promote)
        if promoting and self.environment != "dev":
            raise ValueError(
                f"models.{promoting[0]}.autoPromote: automatic promotion is for dev only, not {self.environment} "
                "(promote reviewed versions with `mlops promote`)"
            )
        if self.environment == "prod":
            required = {
                "clusterEndpointPublic": (self.cluster_endpoint_public, False),
                "databaseMultiAz": (self.database_multi_az, True),
                "databaseDeletionProtection": (self.database_deletion_protection, True),
            }
            for key, (actual, expected) in required.items():
                if actual != expected:
                    raise ValueError(f"{key} must be {str(expected).lower()} in prod")
            if self.availability_zone_count < 3:
                raise ValueError("availabilityZoneCount must be >= 3 in prod")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "prod"

    @property
    def data_survives_destroy(self) -> bool:
        """Whether `pulumi destroy` keeps the stack's data: final database snapshots, buckets not emptied.

        Follows databaseDeletionProtection (required in prod, on in staging): a stack whose databases
        refuse deletion must not have `destroy` empty its buckets first and then stop at a database,
        leaving a registry whose artifacts are gone. Dev, unprotected, destroys everything.
        """
        return self.database_deletion_protection

    @property
    def placeholders(self) -> list[str]:
        """`key: value` of every stack-file placeholder still in place (documentation ranges)."""
        return [
            f"clusterPublicAccessCidrs: {cidr}"
            for cidr in self.cluster_public_access_cidrs
            if _is_documentation_range(_parse_cidr(cidr))
        ]

    @property
    def name_prefix(self) -> str:
        """Prefix for physical names that must be readable in the AWS console."""
        return f"mlops-{self.stack}"


def _decode(raw: Any) -> Any:
    """Pulumi hands every config value over as a string; objects and lists arrive as JSON."""
    if isinstance(raw, str) and raw[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw


def _describe(error: Mapping[str, Any]) -> str:
    cause = (error.get("ctx") or {}).get("error")
    location = cause.key if isinstance(cause, KeyedValueError) else ".".join(str(part) for part in error["loc"])
    location = location or "(root)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{PROJECT}:{location}: unknown key (check the spelling against Pulumi.yaml's config schema)"
    if error["type"] == "missing":
        return f"{PROJECT}:{location}: required key is missing"
    if error["type"] == "literal_error":
        return f"{PROJECT}:{location}: {message.replace('Input should be', 'expected')}"
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"{PROJECT}:{location}: {message.replace('Input should be', 'expected')}{shown}"


def parse_config(
    stack: str,
    region: str | None,
    values: Mapping[str, Any],
    *,
    refuse_placeholders: bool = False,
    today: date | None = None,
    enforce_support: bool = True,
) -> PlatformConfig:
    """Validate raw `project:key -> value` config into a PlatformConfig or raise ConfigError.

    `refuse_placeholders`: a deployment (and `mlops preflight`) must not go ahead with a stack
    file's example values; a render under mocks may. `today`: the day support windows are judged
    on (default: today, UTC). `enforce_support`: refuse a version whose standard support has ended
    (a deployment); False lets the offline plan render it, to warn instead.
    """
    prefix = f"{PROJECT}:"
    own = {key.removeprefix(prefix): _decode(value) for key, value in values.items() if key.startswith(prefix)}
    if region is None:
        raise ConfigError(f"stack '{stack}': aws:region is not set; expected an AWS region such as eu-west-1")
    context = {"refuse_placeholders": refuse_placeholders, "today": today, "enforce_support": enforce_support}
    try:
        return PlatformConfig.model_validate({**own, "stack": stack, "region": region}, context=context)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        header = f"stack '{stack}': invalid configuration"
        raise ConfigError("\n  ".join([header, *problems])) from None


def running_under_mocks() -> bool:
    """True for the offline plan and unit tests (pulumi.runtime.set_mocks), False under the engine."""
    return isinstance(get_monitor(), MockMonitor)


def load_config() -> PlatformConfig:
    """Read the running stack's config (from a real deployment or from mocks) and validate it.

    A real `pulumi preview`/`up` refuses placeholders, so nothing unreachable is ever created; the
    offline plan renders them (the plan shows the stack's shape) with a warning naming each one.
    """
    values: dict[str, Any] = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    region = values.get("aws:region")
    offline = running_under_mocks()
    config = parse_config(
        pulumi.get_stack(), region, values, refuse_placeholders=not offline, enforce_support=not offline
    )
    for problem in config.support_problems():
        pulumi.log.warn(f"stack '{config.stack}': {PROJECT}:{problem}; `pulumi up` refuses it")
    for placeholder in config.placeholders:
        pulumi.log.warn(
            f"stack '{config.stack}': {PROJECT}:{placeholder} is a placeholder; `pulumi up` refuses it "
            "until it holds the deployer's egress CIDR"
        )
    return config
