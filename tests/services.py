"""Real service processes for the tests: a loopback S3 API (moto) and a private PostgreSQL instance,
and the settings that point this process's clients at them.

Fixtures in tests/conftest.py wrap these; they live here so a benchmark or a demo script can reuse them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workloads.local_process import free_loopback_port
from workloads.tracking.local import LocalTrackingServer

DUMMY_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# No test waits minutes on MLflow's default retry schedule (7 retries, factor 2) when a server is
# down on purpose; individual tests tighten these further.
FAST_CLIENT_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    # Small models train faster on one thread, and the machine is shared (see workloads.training).
    "MLOPS_TORCH_THREADS": "1",
}


def client_environment(server: LocalTrackingServer) -> dict[str, str]:
    """What points MLflow clients (fluent API, MlflowClient, the CLI, pipeline steps) at `server`."""
    return {**server.client_environment(), **FAST_CLIENT_ENVIRONMENT}


def point_client_at(monkeypatch: pytest.MonkeyPatch, server: LocalTrackingServer) -> None:
    """Make MLflow clients in this process, and the processes it starts, use `server`."""
    for name, value in client_environment(server).items():
        monkeypatch.setenv(name, value)


def _wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


@dataclass
class MotoS3Server:
    """`moto_server` on a free loopback port: an S3 API that keeps everything in memory."""

    endpoint_url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, moto_executable: str | None = None) -> MotoS3Server:
        # Prefer the moto next to this interpreter (the project's venv) over any other on PATH.
        beside_python = Path(sys.executable).with_name("moto_server")
        executable = moto_executable or (str(beside_python) if beside_python.exists() else shutil.which("moto_server"))
        if executable is None:
            raise FileNotFoundError("moto_server not found: install the dev extra (moto[server])")
        port = free_loopback_port()
        process = subprocess.Popen(
            [executable, "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        server = cls(endpoint_url=f"http://127.0.0.1:{port}", process=process)
        _wait_until(server.answers, 30, "moto_server")
        return server

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint_url, timeout=1) as response:
                return response.status < 500
        except urllib.error.HTTPError as error:
            return error.code < 500
        except OSError:
            return False

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def fresh_bucket(self, purpose: str) -> str:
        """A new, empty bucket named `<purpose>-<random>`: tests sharing the server never see each other's."""
        name = f"{purpose}-{uuid.uuid4().hex[:12]}"
        self.create_bucket(name)
        return name

    def point_clients(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Dummy credentials, and every AWS client this process creates (S3, SNS, Secrets Manager, ...)
        talking to this server; AWS_ENDPOINT_URL_S3 is named too, as the workloads document it."""
        for name, value in DUMMY_AWS_ENVIRONMENT.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_ENDPOINT_URL", self.endpoint_url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", self.endpoint_url)

    def client(self, service: str = "s3") -> Any:
        """A boto3 client of this moto server (it answers every AWS API moto has, not only S3)."""
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1", **_boto_credentials())

    def sns_inbox(self, name: str) -> tuple[str, str]:
        """A fresh SNS topic and an SQS queue subscribed to it: (topic ARN, queue URL). What is
        published to the topic can be read back from the queue, as a subscriber would."""
        sns, sqs = self.client("sns"), self.client("sqs")
        suffix = uuid.uuid4().hex[:12]
        topic = sns.create_topic(Name=f"{name}-{suffix}")["TopicArn"]
        queue = sqs.create_queue(QueueName=f"{name}-inbox-{suffix}")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        return topic, queue

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": DUMMY_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": DUMMY_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
    }


def postgres_bin_directory() -> Path:
    """Newest /usr/lib/postgresql/<version>/bin (Debian layout)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*/bin") if (p / "initdb").exists()), key=lambda p: int(p.parent.name))
    if not versions:
        raise FileNotFoundError("no PostgreSQL server binaries under /usr/lib/postgresql (run .ci/services)")
    return versions[-1]


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free port, so a test can stop and start it at will.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` user.
    By default every connection is trusted. `like_rds` makes it check passwords (SCRAM) on TCP and
    serve TLS with a self-signed certificate, as RDS does, so clients can keep `sslmode=require`;
    the superuser `postgres` then connects through the Unix socket (`admin_conninfo`).
    """

    def __init__(self, like_rds: bool = False) -> None:
        self.bin = postgres_bin_directory()
        self.port = free_loopback_port()
        self.directory = Path(tempfile.mkdtemp(prefix="mlops-private-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        self.like_rds = like_rds
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        authentication = ["--auth-local=trust", "--auth-host=scram-sha-256"] if like_rds else ["-A", "trust"]
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", *authentication, "--no-sync"])
        if like_rds:
            self._create_certificate()

    @property
    def admin_conninfo(self) -> str:
        """The superuser through the Unix socket: trusted in both modes."""
        return f"host={self.directory} port={self.port} user=postgres dbname=postgres"

    def _create_certificate(self) -> None:
        key, certificate = self.directory / "server.key", self.directory / "server.crt"
        request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"]
        subprocess.run([*request, "-keyout", str(key), "-out", str(certificate)], check=True, capture_output=True)
        key.chmod(0o600)  # PostgreSQL refuses a key others can read
        if self._as_postgres:
            for path in (key, certificate):
                shutil.chown(path, "postgres", "postgres")

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, command: list[str]) -> None:
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        if self.like_rds:
            options += f" -c ssl=on -c ssl_cert_file={self.directory}/server.crt"
            options += f" -c ssl_key_file={self.directory}/server.key"
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "start",
            ]
        )

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when a database host goes away."""
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
