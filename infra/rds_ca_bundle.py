"""The RDS certificate authorities of one region, fetched at `pulumi up` and kept in the stack's state.

Database clients that verify the server (KFP's API server, MLMD) need the CA bundle RDS signs its
server certificates with, which no container image's system trust store carries. AWS publishes it
per region at a fixed address; fetching it at deploy time (verified TLS, parsed as certificates)
keeps it current with AWS's CA rotations without a copy in the repository, and putting it in state
means pods never depend on that address at start. A second `pulumi up` fetches nothing: the bundle
changes only when the region (the address) does, or with `pulumi up --replace <its URN>`.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import urllib.request
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider

_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.DOTALL)


def bundle_url(region: str) -> str:
    """AWS's regional bundle (the global one also works, but carries every region's CAs)."""
    return f"https://truststore.pki.rds.amazonaws.com/{region}/{region}-bundle.pem"


def certificates(pem: str) -> list[str]:
    """The PEM certificates in `pem`, each checked to decode; ValueError when there are none."""
    found = _CERTIFICATE.findall(pem)
    if not found:
        raise ValueError("no PEM certificate in the RDS CA bundle")
    for certificate in found:
        ssl.PEM_cert_to_DER_cert(certificate)  # raises ValueError on a damaged block
    return found


def fetch_bundle(url: str, timeout_seconds: float = 30) -> str:
    """Download the bundle over TLS verified against the system's public CAs, and check it."""
    with urllib.request.urlopen(url, timeout=timeout_seconds, context=ssl.create_default_context()) as response:
        pem = response.read().decode("ascii")
    return "\n".join(certificates(pem)) + "\n"


class _BundleProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        pem = fetch_bundle(props["url"])
        digest = hashlib.sha256(pem.encode()).hexdigest()
        return CreateResult(id_=digest, outs={"url": props["url"], "pem": pem, "sha256": digest})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        moved = olds.get("url") != news.get("url")
        return DiffResult(changes=moved, replaces=["url"] if moved else [], delete_before_replace=False)


class RdsCaBundle(pulumi.dynamic.Resource):
    """`pem`: the region's RDS CA certificates; `sha256`: their digest (what the plan shows)."""

    pem: pulumi.Output[str]
    sha256: pulumi.Output[str]

    def __init__(self, name: str, region: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(_BundleProvider(), name, {"url": bundle_url(region), "pem": None, "sha256": None}, opts)
