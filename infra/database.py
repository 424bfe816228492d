"""One private, encrypted RDS instance that only the cluster can reach, over TLS only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from infra.config import DatabaseConfig

Engine = Literal["postgres", "mysql"]

_PORTS: dict[Engine, int] = {"postgres": 5432, "mysql": 3306}
# The parameter that makes the server refuse unencrypted connections, per engine.
_TLS_PARAMETER: dict[Engine, tuple[str, str]] = {
    "postgres": ("rds.force_ssl", "1"),
    "mysql": ("require_secure_transport", "1"),
}
_LOG_EXPORTS: dict[Engine, list[str]] = {
    "postgres": ["postgresql", "upgrade"],
    "mysql": ["error", "slowquery"],
}


def parameter_group_family(engine: Engine, engine_version: str) -> str:
    """`postgres` + `16.4` -> `postgres16`; `mysql` + `8.4.3` -> `mysql8.4` (RDS's family names)."""
    parts = engine_version.split(".")
    return f"postgres{parts[0]}" if engine == "postgres" else f"mysql{'.'.join(parts[:2])}"


# MySQL 8.4 creates new accounts with caching_sha2_password (authentication_policy
# `*:caching_sha2_password`) and no longer loads mysql_native_password by default. KFP 2.17's API
# and cache servers (go-sql-driver/mysql 1.9) handle caching_sha2_password, but its metadata server,
# ML Metadata 1.14.0, does not: it links MariaDB Connector/C 3.0.8 built with only the
# mysql_native_password and old_password plugins (ml_metadata/libmysqlclient.BUILD at v1.14.0) and
# asks for mysql_native_password (MYSQL_DEFAULT_AUTH in mysql_metadata_source.cc); google/ml-metadata
# #178 and kubeflow/pipelines#9549 are still open. So the instance that KFP logs in to creates its
# master user (the account KFP and MLMD share) with mysql_native_password. AWS documents this value
# and the master user following it for Aurora MySQL 8.4, where the plugin stays enabled; that RDS for
# MySQL 8.4 takes the same value was not verified against a live instance here (the first `up`
# shows it: the parameter group is created before the instance).
NATIVE_PASSWORD_POLICY = ("authentication_policy", "*:mysql_native_password")


def engine_parameters(engine: Engine, engine_version: str, native_password_auth: bool) -> list[tuple[str, str]]:
    """The parameter group's settings: TLS always; on MySQL 8.4+, native passwords only if asked."""
    if native_password_auth and engine != "mysql":
        raise ValueError("native_password_auth is a MySQL setting")
    # 8.0 on RDS still defaults to mysql_native_password; 8.4 needs to be told.
    tell_native = native_password_auth and parameter_group_family(engine, engine_version) != "mysql8.0"
    return [_TLS_PARAMETER[engine], *([NATIVE_PASSWORD_POLICY] if tell_native else [])]


@dataclass(frozen=True)
class DatabaseArgs:
    engine: Engine
    """`postgres` (MLflow's backend store) or `mysql` (Kubeflow Pipelines wants MySQL in production)."""
    database_name: str
    """Initial database created on the instance."""
    master_username: str
    """Administrator login; its password is generated and kept by RDS in Secrets Manager."""
    size: DatabaseConfig
    """Engine version, instance class and storage from the stack config."""
    vpc_id: pulumi.Input[str]
    subnet_ids: list[pulumi.Input[str]]
    """Private subnets only: the instance gets no public address."""
    allowed_security_group_id: pulumi.Input[str]
    """The only security group admitted (the EKS cluster security group every node carries)."""
    kms_key_arn: pulumi.Input[str]
    """Encrypts storage, snapshots, Performance Insights and the master-user secret."""
    multi_az: bool
    deletion_protection: bool
    backup_retention_days: int
    final_snapshot: bool
    """Take a final snapshot when `pulumi destroy` deletes the instance (and keep its automated backups)."""
    master_password: pulumi.Output[str] | None = None
    """None: RDS generates the password, keeps it in Secrets Manager and rotates it (clients must
    read it from there). A Pulumi secret instead, for clients that can only take a static password
    from a Kubernetes Secret (Kubeflow Pipelines): encrypted in state, never rotated behind them."""
    native_password_auth: bool = False
    """MySQL: the master user authenticates with mysql_native_password (clients without
    caching_sha2_password, see NATIVE_PASSWORD_POLICY)."""


class Database(pulumi.ComponentResource):
    """RDS instance with a generated master password that never appears in state or outputs."""

    address: pulumi.Output[str]
    port: pulumi.Output[int]
    database_name: str
    master_username: str
    master_password: pulumi.Output[str] | None
    """The Pulumi secret it was given (`DatabaseArgs.master_password`); None where RDS manages it."""
    master_user_secret_arn: pulumi.Output[str]
    """The RDS-managed Secrets Manager secret with the current username and password ("" without one)."""
    kms_key_arn: pulumi.Input[str]
    """Encrypts the storage and the master-user secret: readers of the secret need it."""
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:data:Database", name, None, opts)
        security_group = self._create_security_group(name, args)
        instance = self._create_instance(name, args, security_group, self._create_subnet_group(name, args))

        self.address = instance.address
        self.port = instance.port
        self.database_name = args.database_name
        self.master_username = args.master_username
        self.master_password = args.master_password
        self.master_user_secret_arn = instance.master_user_secrets.apply(
            lambda secrets: (secrets[0].secret_arn or "") if secrets else ""
        )
        self.kms_key_arn = args.kms_key_arn
        self.security_group_id = security_group.id
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "masterUserSecretArn": self.master_user_secret_arn,
            }
        )

    def _create_security_group(self, name: str, args: DatabaseArgs) -> aws.ec2.SecurityGroup:
        """Admits the engine's port from the cluster's security group and nothing else."""
        child = pulumi.ResourceOptions(parent=self)
        port = _PORTS[args.engine]
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description=f"{args.engine} for {name}: reachable from the EKS cluster only",
            tags={"Name": f"{name}-db"},
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-from-cluster",
            security_group_id=security_group.id,
            referenced_security_group_id=args.allowed_security_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description="Database clients running on the EKS cluster",
            opts=child,
        )
        return security_group

    def _create_subnet_group(self, name: str, args: DatabaseArgs) -> aws.rds.SubnetGroup:
        return aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=args.subnet_ids,
            description=f"Private subnets for {name}",
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_parameter_group(self, name: str, args: DatabaseArgs) -> aws.rds.ParameterGroup:
        settings = engine_parameters(args.engine, args.size.engine_version, args.native_password_auth)
        return aws.rds.ParameterGroup(
            f"{name}-params",
            family=parameter_group_family(args.engine, args.size.engine_version),
            description=f"{name}: TLS required",
            parameters=[aws.rds.ParameterGroupParameterArgs(name=key, value=value) for key, value in settings],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_instance(
        self,
        name: str,
        args: DatabaseArgs,
        security_group: aws.ec2.SecurityGroup,
        subnet_group: aws.rds.SubnetGroup,
    ) -> aws.rds.Instance:
        parameters = self._create_parameter_group(name, args)
        final_snapshot_identifier = self._final_snapshot_identifier(name, args) if args.final_snapshot else None
        # Performance Insights is not offered on the smallest burstable classes; asking fails the create.
        insights = not args.size.instance_class.endswith((".micro", ".small"))
        rds_managed_password = args.master_password is None
        return aws.rds.Instance(
            f"{name}-db",
            engine=args.engine,
            engine_version=args.size.engine_version,
            instance_class=args.size.instance_class,
            allocated_storage=args.size.allocated_storage_gib,
            max_allocated_storage=args.size.max_allocated_storage_gib,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            db_name=args.database_name,
            username=args.master_username,
            # RDS-managed: the password never passes through Pulumi, so it is in no state or output.
            manage_master_user_password=True if rds_managed_password else None,
            master_user_secret_kms_key_id=args.kms_key_arn if rds_managed_password else None,
            password=args.master_password,
            port=_PORTS[args.engine],
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            parameter_group_name=parameters.name,
            publicly_accessible=False,
            multi_az=args.multi_az,
            deletion_protection=args.deletion_protection,
            backup_retention_period=args.backup_retention_days,
            copy_tags_to_snapshot=True,
            skip_final_snapshot=not args.final_snapshot,
            final_snapshot_identifier=final_snapshot_identifier,
            # Point-in-time restore stays possible for the retention period after a destroy.
            delete_automated_backups=not args.final_snapshot,
            auto_minor_version_upgrade=True,
            iam_database_authentication_enabled=True,
            performance_insights_enabled=insights,
            performance_insights_kms_key_id=args.kms_key_arn if insights else None,
            enabled_cloudwatch_logs_exports=_LOG_EXPORTS[args.engine],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _final_snapshot_identifier(self, name: str, args: DatabaseArgs) -> pulumi.Output[str]:
        """`<name>-final-<8 hex>`: unique per deployment, the same on every `up` of it.

        A fixed name collides on the second destroy (the first one's snapshot is still there); a
        timestamp would change the instance on every `up`. The suffix is a random value kept in the
        stack's state: created with the instance, unchanged after, new after a destroy. Its keepers are
        the inputs that replace the instance, so a replacement also gets a name of its own.
        """
        suffix = random.RandomId(
            f"{name}-final-snapshot-suffix",
            byte_length=4,
            keepers={
                "engine": args.engine,
                "databaseName": args.database_name,
                "masterUsername": args.master_username,
                "kmsKeyArn": args.kms_key_arn,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        return pulumi.Output.concat(f"{name}-final-", suffix.hex)
