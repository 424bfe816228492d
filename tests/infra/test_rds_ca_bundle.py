"""The RDS CA bundle fetch: only certificates get into the cluster's trust store, or the deploy stops."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from infra.rds_ca_bundle import bundle_url, certificates, fetch_bundle


def _certificate_pem(common_name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_the_bundle_address_is_the_regions() -> None:
    assert bundle_url("eu-west-1") == "https://truststore.pki.rds.amazonaws.com/eu-west-1/eu-west-1-bundle.pem"


def test_a_bundle_keeps_every_certificate_and_nothing_else(tmp_path: Path) -> None:
    first, second = _certificate_pem("Amazon RDS test CA 1"), _certificate_pem("Amazon RDS test CA 2")
    page = tmp_path / "bundle.pem"
    page.write_text(f"Amazon RDS CAs\n{first}\n# comment\n{second}")
    pem = fetch_bundle(page.as_uri())
    assert certificates(pem) == [first.strip(), second.strip()]
    assert "comment" not in pem


@pytest.mark.parametrize(
    "body",
    ["<html>maintenance</html>", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"],
)
def test_anything_but_certificates_stops_the_deploy(tmp_path: Path, body: str) -> None:
    page = tmp_path / "bundle.pem"
    page.write_text(body)
    with pytest.raises(ValueError):
        fetch_bundle(page.as_uri())
