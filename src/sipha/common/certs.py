"""``sipha certs DIR``: a private test CA and server/client certificates for SIP over TLS.

For demos and tests only: a real deployment uses certificates from its own CA. What is made:

==============  ==========================================================================
``ca.pem``      the CA certificate (the ``tls_ca`` every peer trusts); ``ca.key`` its key
``server.pem``  a node certificate with subjectAltNames for the given hosts and IPs
``client.pem``  a client certificate (mutual TLS: a dispatcher or a load tester to servers)
==============  ==========================================================================

Both leaf certificates carry serverAuth *and* clientAuth: a SIP node opens TLS connections as
well as accepting them (RFC 3261 §26.3.1: a proxy is a TLS client to the next hop), so one
certificate serves both directions. RFC 5922 §7.1 puts the SIP domain in subjectAltName, which
is where the hosts go (the CN is informational). Keys are ECDSA P-256 (fast to make and to
handshake; OpenSSL, hence Kamailio's tls module, takes them) and written mode 0600.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DEFAULT_HOSTS", "CertFiles", "make_certs"]

DEFAULT_HOSTS = ("127.0.0.1", "::1", "localhost")
MAX_HOSTS = 100


@dataclass(frozen=True, slots=True)
class CertFiles:
    """Where :func:`make_certs` wrote each file."""

    ca: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for host in hosts:
        host = host.strip().strip("[]")
        if not host or len(host) > 253 or any(c.isspace() for c in host):
            raise ValueError(f"host {host!r}: expected an IP address or a DNS name")
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            out.append(x509.DNSName(host))
    return out


def _write(path: Path, data: bytes, *, private: bool) -> None:
    # Created with the final mode, so a key is never readable by others, even briefly.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _leaf(
    cn: str,
    sans: list[x509.GeneralName],
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    start: datetime.datetime,
    days: int,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_certs(
    directory: str | Path,
    hosts: tuple[str, ...] = DEFAULT_HOSTS,
    *,
    days: int = 365,
    force: bool = False,
    name: str = "sipha test CA",
) -> CertFiles:
    """Write a CA and server/client certificates valid for ``hosts`` into ``directory``.

    Raises ValueError for a bad host or day count, FileExistsError when a file is there and
    ``force`` is not set, OSError when the directory cannot be written.
    """
    if not hosts or len(hosts) > MAX_HOSTS:
        raise ValueError(f"give 1 to {MAX_HOSTS} hosts")
    if not 1 <= days <= 36500:
        raise ValueError("days must be 1..36500")
    sans = _names(hosts)
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = CertFiles(
        d / "ca.pem", d / "ca.key", d / "server.pem", d / "server.key",
        d / "client.pem", d / "client.key",
    )
    existing = [p for p in (files.ca, files.server_cert, files.client_cert) if p.exists()]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} exists (use --force to replace the set)")
    # Backdated a little: a peer whose clock is slightly behind must not see "not yet valid".
    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write(files.ca, ca_cert.public_bytes(pem), private=False)
    _write(files.ca_key, _key_pem(ca_key), private=True)
    first = hosts[0].strip("[]")
    for cn, cert_path, key_path in (
        (first, files.server_cert, files.server_key),
        (f"client {first}", files.client_cert, files.client_key),
    ):
        cert, key = _leaf(cn, sans, ca_cert, ca_key, start, days)
        _write(cert_path, cert.public_bytes(pem), private=False)
        _write(key_path, _key_pem(key), private=True)
    return files
