"""A throwaway certificate authority for the TLS tests, made with `cryptography`: a CA and the
certificates it issues (EC P-256 unless told; good for TLS servers and clients, for 127.0.0.1
and localhost unless other DNS names are given).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def write_key(key: Any, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))


@dataclass
class Ca:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    path: Path  # the CA certificate, PEM
    folder: Path

    @classmethod
    def make(cls, folder: Path, cn: str = "miniloop test CA") -> Ca:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _validity(x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                      .public_key(key.public_key()).serial_number(x509.random_serial_number()))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        path = folder / "ca.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert, path, folder)

    def issue(self, cn: str, dns: tuple[str, ...] = ("localhost",), key: Any = None,
              file_name: str | None = None) -> tuple[Path, Path]:
        """A certificate with subject CN `cn` and subjectAltNames `dns` and 127.0.0.1, for TLS servers
        and clients; returns the paths of the certificate and of its key (PEM)."""
        key = key or ec.generate_private_key(ec.SECP256R1())
        alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = (
            _validity(x509.CertificateBuilder().subject_name(name(cn)).issuer_name(self.cert.subject)
                      .public_key(key.public_key()).serial_number(x509.random_serial_number()))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        stem = file_name or cn.replace(" ", "-")
        cert_path, key_path = self.folder / f"{stem}.pem", self.folder / f"{stem}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(key, key_path)
        return cert_path, key_path


def self_signed(key: Any, cn: str = "a DFSP's JWS certificate") -> str:
    """A self-signed certificate for `key`, PEM (as a JWS key's certificate may be)."""
    cert = (
        _validity(x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn))
                  .public_key(key.public_key()).serial_number(x509.random_serial_number()))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()
