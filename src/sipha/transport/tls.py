"""TLS for SIP (RFC 3261 §26.2.1, RFC 5630): the settings of a node and its ssl contexts.

Theory of operation
-------------------
SIP over TLS is SIP over TCP inside a TLS session: the same stream framing, connection reuse,
limits and idle timeout (see :mod:`sipha.transport.endpoint`), with two ``ssl.SSLContext``:

* the **server context** on ``tls:HOST:PORT`` listeners presents ``cert``/``key``; with
  ``require_client_cert`` it asks every client for a certificate signed by ``ca`` (mutual TLS
  between dispatchers and servers), else it asks for none;
* the **client context** on outgoing connections checks the peer's certificate against ``ca``
  (the system's CAs when no ``ca`` is given) and that it names the host we dialled
  (subjectAltName DNS name or IP address, RFC 5922 §7.2); it presents ``client_cert`` (default:
  ``cert``) when one is set, for peers that require mutual TLS. ``verify_server = false`` turns
  the check off, for demos against self-signed peers only.

:class:`TlsConfig` is the ``[tls]`` table of the server's and the dispatcher's TOML files.
:func:`check` loads every file once at configuration time, so a missing or bad file is an
error naming the field and the fix before any socket is bound, never a handshake that fails
later. TLS 1.2 is the minimum (RFC 8996 retired 1.0 and 1.1).
"""

from __future__ import annotations

import ssl

import msgspec

__all__ = ["TlsConfig", "TlsConfigError", "check", "client_context", "server_context"]

_FIX_FILES = "give PEM files; `sipha certs DIR` makes a test CA and certificates"


class TlsConfigError(ValueError):
    """A TLS setting that cannot be used; ``field`` names it (``cert``, ``key``, ``ca``...)."""

    def __init__(self, field: str, problem: str, fix: str = _FIX_FILES) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"tls.{field}: {problem} (fix: {fix})")


class TlsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Certificates, keys and checks for SIP over TLS (the ``[tls]`` table)."""

    cert: str = ""  # PEM certificate (chain) our listeners present
    key: str = ""  # its private key (PEM); empty: in the cert file
    ca: str = ""  # PEM CA bundle peers' certificates must chain to; empty: the system's
    verify_server: bool = True  # check the certificate of every peer we connect to
    require_client_cert: bool = False  # mutual TLS on our listeners (needs ca)
    client_cert: str = ""  # presented on outgoing connections; empty: cert
    client_key: str = ""
    handshake_timeout: float = 5.0

    @property
    def configured(self) -> bool:
        return bool(self.cert or self.ca or self.client_cert)


def _base(purpose: ssl.Purpose) -> ssl.SSLContext:
    ctx = ssl.SSLContext(
        ssl.PROTOCOL_TLS_SERVER if purpose is ssl.Purpose.CLIENT_AUTH else ssl.PROTOCOL_TLS_CLIENT
    )
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert: str, key: str, cert_field: str, key_field: str) -> None:
    try:
        ctx.load_cert_chain(cert, key or None)
    except FileNotFoundError as exc:
        missing = key_field if key and exc.filename == key else cert_field
        raise TlsConfigError(missing, f"no such file {exc.filename or cert!r}") from None
    except PermissionError as exc:
        raise TlsConfigError(cert_field, f"cannot read {exc.filename or cert!r}") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            cert_field,
            f"{cert!r} with key {key or cert!r} is not a usable PEM certificate and matching "
            f"key ({exc.strerror or exc})",
        ) from None


def _load_ca(ctx: ssl.SSLContext, ca: str) -> None:
    try:
        ctx.load_verify_locations(cafile=ca)
    except FileNotFoundError:
        raise TlsConfigError("ca", f"no such file {ca!r}") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError("ca", f"{ca!r} is not a PEM CA bundle ({exc})") from None


def server_context(cfg: TlsConfig) -> ssl.SSLContext:
    """The context of ``tls:`` listeners. Raises TlsConfigError naming the field."""
    if not cfg.cert:
        raise TlsConfigError(
            "cert", "a tls: listener needs a certificate",
            "set tls.cert and tls.key (--tls-cert/--tls-key); `sipha certs DIR` makes test ones",
        )
    ctx = _base(ssl.Purpose.CLIENT_AUTH)
    _load_chain(ctx, cfg.cert, cfg.key, "cert", "key")
    if cfg.require_client_cert:
        if not cfg.ca:
            raise TlsConfigError(
                "ca", "require_client_cert needs the CA that signs the clients' certificates",
                "set tls.ca (--tls-ca)",
            )
        _load_ca(ctx, cfg.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def client_context(cfg: TlsConfig) -> ssl.SSLContext:
    """The context of outgoing TLS connections. Raises TlsConfigError naming the field."""
    ctx = _base(ssl.Purpose.SERVER_AUTH)
    if cfg.verify_server:
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
        if cfg.ca:
            _load_ca(ctx, cfg.ca)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cfg.client_cert:
        _load_chain(ctx, cfg.client_cert, cfg.client_key, "client_cert", "client_key")
    elif cfg.cert:
        _load_chain(ctx, cfg.cert, cfg.key, "cert", "key")
    return ctx


def check(cfg: TlsConfig, *, listening: bool) -> None:
    """Load every file the settings name, as the node will; raise TlsConfigError if one
    cannot be used. ``listening``: the node has a tls: listener (a certificate is needed)."""
    if not 0 < cfg.handshake_timeout <= 60:
        raise TlsConfigError("handshake_timeout", "must be in (0, 60] seconds", "e.g. 5")
    if listening or cfg.require_client_cert:
        server_context(cfg)
    client_context(cfg)
