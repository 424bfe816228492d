"""Database alone, under mocks, on small hand-made Args: private, encrypted, TLS-only RDS reachable
from one security group, with a password that never passes through Pulumi unless one is given."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from infra.config import DatabaseConfig
from infra.database import (
    NATIVE_PASSWORD_POLICY,
    Database,
    DatabaseArgs,
    Engine,
    engine_parameters,
    parameter_group_family,
)
from infra.offline_plan import SECRET
from tests.infra.component_mocks import Declared, declare, kms_key_arn

INSTANCE = "aws:rds/instance:Instance"
SIZES = {
    "postgres": DatabaseConfig(
        engine_version="16.4", instance_class="db.t4g.small", allocated_storage_gib=20, max_allocated_storage_gib=40
    ),
    "mysql": DatabaseConfig(
        engine_version="8.4.3", instance_class="db.m6g.large", allocated_storage_gib=20, max_allocated_storage_gib=40
    ),
}


def declare_database(engine: Engine, final_snapshot: bool = False, password: str | None = None) -> Declared[Database]:
    def build() -> Database:
        return Database(
            f"mlops-{engine}",
            DatabaseArgs(
                engine=engine,
                database_name="mlflow",
                master_username="admin_user",
                size=SIZES[engine],
                vpc_id="vpc-0123",
                subnet_ids=["subnet-private-a", "subnet-private-b"],
                allowed_security_group_id="sg-cluster",
                kms_key_arn=kms_key_arn("rds"),
                multi_az=final_snapshot,
                deletion_protection=final_snapshot,
                backup_retention_days=7,
                final_snapshot=final_snapshot,
                master_password=None if password is None else pulumi.Output.secret(password),
                native_password_auth=engine == "mysql",
            ),
        )

    return declare(build)


def instance(declared: Declared[Database]) -> dict[str, Any]:
    return declared.one(INSTANCE)


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_storage_and_insights_are_encrypted_and_the_instance_is_private(engine: Engine) -> None:
    inputs = instance(declare_database(engine))

    assert inputs["storageEncrypted"] is True and inputs["kmsKeyId"] == kms_key_arn("rds")
    assert inputs["publiclyAccessible"] is False
    assert inputs["iamDatabaseAuthenticationEnabled"] is True
    # The smallest burstable classes have no Performance Insights; where it is on, it uses the key.
    if inputs["instanceClass"].endswith(".small"):
        assert inputs["performanceInsightsEnabled"] is False and "performanceInsightsKmsKeyId" not in inputs
    else:
        assert inputs["performanceInsightsKmsKeyId"] == kms_key_arn("rds")


@pytest.mark.parametrize(("engine", "port"), [("postgres", 5432), ("mysql", 3306)])
def test_only_the_cluster_security_group_reaches_the_engine_port(engine: Engine, port: int) -> None:
    declared = declare_database(engine)

    (rule,) = declared.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule["inputs"]["referencedSecurityGroupId"] == "sg-cluster"
    assert (rule["inputs"]["fromPort"], rule["inputs"]["toPort"], rule["inputs"]["ipProtocol"]) == (port, port, "tcp")
    assert "cidrIpv4" not in rule["inputs"]
    assert declared.one("aws:rds/subnetGroup:SubnetGroup")["subnetIds"] == ["subnet-private-a", "subnet-private-b"]
    assert instance(declared)["port"] == port


def test_rds_keeps_and_rotates_the_password_when_none_is_given() -> None:
    inputs = instance(declare_database("postgres"))

    assert inputs["manageMasterUserPassword"] is True
    assert inputs["masterUserSecretKmsKeyId"] == kms_key_arn("rds")
    assert "password" not in inputs


def test_a_given_password_stays_a_secret_and_rds_does_not_manage_it() -> None:
    inputs = instance(declare_database("mysql", password="not-in-the-plan"))

    assert inputs["password"] == SECRET
    assert "manageMasterUserPassword" not in inputs


@pytest.mark.parametrize(
    ("engine", "family", "parameters"),
    [
        ("postgres", "postgres16", [("rds.force_ssl", "1")]),
        ("mysql", "mysql8.4", [("require_secure_transport", "1"), NATIVE_PASSWORD_POLICY]),
    ],
)
def test_the_parameter_group_refuses_plain_connections(engine: Engine, family: str, parameters: list) -> None:
    group = declare_database(engine).one("aws:rds/parameterGroup:ParameterGroup")

    assert group["family"] == family
    assert [(parameter["name"], parameter["value"]) for parameter in group["parameters"]] == parameters


def test_native_passwords_are_a_mysql_84_setting_only() -> None:
    assert engine_parameters("mysql", "8.0.39", native_password_auth=True) == [("require_secure_transport", "1")]
    assert parameter_group_family("mysql", "8.0.39") == "mysql8.0"
    with pytest.raises(ValueError, match="native_password_auth is a MySQL setting"):
        engine_parameters("postgres", "16.4", native_password_auth=True)


@pytest.mark.parametrize("final_snapshot", [False, True], ids=["throw-away", "kept"])
def test_a_kept_database_takes_a_uniquely_named_final_snapshot_and_keeps_its_backups(final_snapshot: bool) -> None:
    declared = declare_database("postgres", final_snapshot=final_snapshot)
    inputs = instance(declared)

    assert inputs["skipFinalSnapshot"] is not final_snapshot
    assert inputs["deleteAutomatedBackups"] is not final_snapshot
    assert inputs["deletionProtection"] is final_snapshot and inputs["backupRetentionPeriod"] == 7
    suffixes = declared.of_type("random:index/randomId:RandomId")
    if final_snapshot:
        (suffix,) = suffixes
        assert inputs["finalSnapshotIdentifier"].startswith("mlops-postgres-final-")
        assert len(inputs["finalSnapshotIdentifier"]) == len("mlops-postgres-final-") + 8  # 4 random bytes, in hex
        assert set(suffix["inputs"]["keepers"]) == {"databaseName", "engine", "kmsKeyArn", "masterUsername"}
    else:
        assert suffixes == [] and "finalSnapshotIdentifier" not in inputs


def test_registers_its_address_port_and_secret() -> None:
    declared = declare_database("postgres")

    outputs = declared.outputs_of("mlops:data:Database")
    assert set(outputs) == {"address", "masterUserSecretArn", "port"}
    assert outputs["address"].endswith(".rds.amazonaws.com")
    assert outputs["masterUserSecretArn"].startswith("arn:aws:secretsmanager:")
