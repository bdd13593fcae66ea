"""The web-config file of Prometheus' own exporters (exporter-toolkit), for TLS and basic auth.

The same YAML file node_exporter's ``--web.config.file`` reads::

    tls_server_config:
      cert_file: /etc/smbsession/exporter.crt
      key_file: /etc/smbsession/exporter.key
      # client_ca_file: /etc/smbsession/clients.pem   (with client_auth_type)
      # client_auth_type: RequireAndVerifyClientCert
      # min_version: TLS12
    basic_auth_users:
      prometheus: $2y$10$...        # a bcrypt hash: htpasswd -nBC 10 prometheus

Keys this module does not know are an error (a typo must not turn security off).
Passwords are checked against their bcrypt hash; a successful check is remembered (as a
SHA-256 of the password, never the password) so that scrapes do not pay bcrypt's cost.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidParameter

__all__ = ["WebConfig", "load_web_config"]

_TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}
_TOP_KEYS = {"tls_server_config", "basic_auth_users", "http_server_config"}
_AUTH_TYPES = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}


@dataclass
class WebConfig:
    """TLS (``ssl_context``, None: plain HTTP) and basic-auth users (name -> bcrypt hash;
    empty: no authentication)."""

    ssl_context: ssl.SSLContext | None = None
    users: dict[str, bytes] = field(default_factory=dict)
    _good: set[tuple[str, bytes]] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def authorized(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header value lets the request in."""
        if not self.users:
            return True
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, sep, password = base64.b64decode(header[6:], validate=True).decode(
                "utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if not sep or hashed is None:
            return False
        digest = hashlib.sha256(password.encode()).digest()
        with self._lock:
            if (user, digest) in self._good:
                return True
        import bcrypt

        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            ok = False
        if ok:
            with self._lock:
                self._good.add((user, digest))
        return bool(ok)


def _bad(path: str, what: str) -> InvalidParameter:
    return InvalidParameter(f"--web-config-file: {path}: {what}")


def load_web_config(path: str | None) -> WebConfig:
    """Read the web-config file at ``path`` (None: plain HTTP, no authentication).

    Certificate and key files are read now (before privileges are dropped, so they may
    be readable by root only). Raises :class:`~smbsession.errors.InvalidParameter`
    naming the file and the problem.
    """
    if path is None:
        return WebConfig()
    try:
        import yaml
    except ImportError:
        raise _bad(path, "reading it needs PyYAML: pip install 'smbsession[exporter]'") from None
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise _bad(path, f"cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise _bad(path, f"not YAML ({exc})") from None
    if not isinstance(data, dict):
        raise _bad(path, "not a mapping of tls_server_config, basic_auth_users")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise _bad(path, f"unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    config = WebConfig()
    tls = data.get("tls_server_config")
    if tls:
        config.ssl_context = _tls(path, tls, Path(path).parent)
    users = data.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise _bad(path, "basic_auth_users is not a mapping of user: bcrypt hash")
    for user, hashed in users.items():
        text = str(hashed)
        if not text.startswith(("$2a$", "$2b$", "$2y$")):
            raise _bad(path, f"the password of {user} is not a bcrypt hash "
                             "(htpasswd -nBC 10 USER makes one)")
        config.users[str(user)] = text.encode()
    if config.users:
        try:
            import bcrypt  # noqa: F401
        except ImportError:
            raise _bad(path, "basic_auth_users needs bcrypt: pip install "
                             "'smbsession[exporter]'") from None
    return config


def _tls(path: str, tls: object, base: Path) -> ssl.SSLContext:
    if not isinstance(tls, dict):
        raise _bad(path, "tls_server_config is not a mapping")
    unknown = set(tls) - _TLS_KEYS
    if unknown:
        raise _bad(path, f"unknown tls_server_config key(s) {', '.join(sorted(unknown))}")
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise _bad(path, "tls_server_config needs cert_file and key_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS.get(str(tls.get("min_version", "TLS12")),
                                            ssl.TLSVersion.TLSv1_2)
    try:
        context.load_cert_chain(base / str(tls["cert_file"]), base / str(tls["key_file"]))
    except (OSError, ssl.SSLError) as exc:
        raise _bad(path, f"cannot load cert_file/key_file ({exc})") from None
    auth = str(tls.get("client_auth_type", "NoClientCert"))
    if auth not in _AUTH_TYPES:
        raise _bad(path, f"client_auth_type {auth} is not one of {', '.join(_AUTH_TYPES)}")
    context.verify_mode = _AUTH_TYPES[auth]
    if tls.get("client_ca_file"):
        try:
            context.load_verify_locations(base / str(tls["client_ca_file"]))
        except (OSError, ssl.SSLError) as exc:
            raise _bad(path, f"cannot load client_ca_file ({exc})") from None
    return context
