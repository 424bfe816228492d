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
from typing import Annotated, Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from workloads import catalogue

PROJECT = "mlops-platform"

# EKS versions in standard support that the add-on and AMI choices here were checked against.
SUPPORTED_KUBERNETES_VERSIONS = ("1.32", "1.33", "1.34")

Environment = Literal["dev", "staging", "prod"]


class ConfigError(pulumi.RunError):
    """A stack-config mistake. `RunError` makes Pulumi print the message alone, without a trace."""


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
        if self.min_size > self.max_size:
            raise ValueError(f"minSize ({self.min_size}) must be <= maxSize ({self.max_size})")
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


class TrackingConfig(_Model):
    """How the MLflow tracking server runs in this stack."""

    replicas: int = Field(ge=1, le=20, description="Server pods; 2+ keeps tracking up during node drains.")
    internal_ingress: bool = Field(description="Expose the server through an internal ALB (VPC-only).")


class ModelSettings(_Model):
    """A catalogue model enabled in this stack, with the stack's overrides of its defaults."""

    min_replicas: int = Field(default=1, ge=1, le=100)
    max_replicas: int = Field(default=2, ge=1, le=100)
    gpu_pool: str | None = Field(default=None, description="Serve on this GPU pool (one GPU per pod).")
    auto_promote: bool = Field(
        default=False, description="Scheduled runs move `production` to a better candidate (dev only)."
    )
    training_schedule: str | None = Field(default=None, description="Five-field cron; the catalogue's otherwise.")
    drift_schedule: str | None = Field(default=None, description="Five-field cron; the catalogue's otherwise.")

    @field_validator("training_schedule", "drift_schedule")
    @classmethod
    def _five_field_cron(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 5:
            raise ValueError(f"{value!r} is not a five-field cron expression (minute hour day month weekday)")
        return value

    @model_validator(mode="after")
    def _replicas_are_ordered(self) -> ModelSettings:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas ({self.min_replicas}) must be <= maxReplicas ({self.max_replicas})")
        return self


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
    def _access_cidrs_are_valid_and_narrow(cls, values: list[str]) -> list[str]:
        for value in values:
            if _parse_cidr(value).prefixlen == 0:
                raise ValueError("0.0.0.0/0 would open the Kubernetes API to the internet; list your CIDRs")
        return values

    @field_validator("kubernetes_version")
    @classmethod
    def _kubernetes_version_is_supported(cls, value: str) -> str:
        if value not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(f"{value!r} is not supported; expected one of {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}")
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
    def _environment_guards(self) -> PlatformConfig:
        if self.cluster_endpoint_public and not self.cluster_public_access_cidrs:
            raise ValueError(
                "clusterEndpointPublic is true but clusterPublicAccessCidrs is empty: list the CIDRs allowed"
            )
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
    location = ".".join(str(part) for part in error["loc"]) or "(root)"
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


def parse_config(stack: str, region: str | None, values: Mapping[str, Any]) -> PlatformConfig:
    """Validate raw `project:key -> value` config into a PlatformConfig or raise ConfigError."""
    prefix = f"{PROJECT}:"
    own = {key.removeprefix(prefix): _decode(value) for key, value in values.items() if key.startswith(prefix)}
    if region is None:
        raise ConfigError(f"stack '{stack}': aws:region is not set; expected an AWS region such as eu-west-1")
    try:
        return PlatformConfig.model_validate({**own, "stack": stack, "region": region})
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        header = f"stack '{stack}': invalid configuration"
        raise ConfigError("\n  ".join([header, *problems])) from None


def load_config() -> PlatformConfig:
    """Read the running stack's config (from a real deployment or from mocks) and validate it."""
    values: dict[str, Any] = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    region = values.get("aws:region")
    return parse_config(pulumi.get_stack(), region, values)
