"""TLS settings for the PostgreSQL connection, named after libpq's sslmode.

RDS accepts TLS from any client, but only ``verify-full`` stops a machine in
the middle from posing as the database: it checks the server's certificate
against a trusted CA and that the certificate names the host we dialled.
RDS certificates are issued by Amazon's own RDS CAs, which are not in the
usual system trust stores, so ``verify-full`` needs their bundle: either the
file named by ``DB_SSLROOTCERT`` or ``jobqueue/certs/rds-global-bundle.pem``
placed in the package before building the ZIP.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from ..errors import ConfigError

# jobqueue/certs/, where a deployment puts the bundle before building the ZIP.
BUNDLED_CA_FILE = Path(__file__).resolve().parents[1] / "certs" / "rds-global-bundle.pem"

_DISABLED = ("disable", "off")
MODES = (*_DISABLED, "require", "verify-full")


def ssl_context(mode: str, ca_file: str | None) -> ssl.SSLContext | None:
    """Build the context pg8000 should use for ``mode``, or None for no TLS.

    pg8000 reads ``ssl_context=None`` as "try TLS without verification", so a
    caller that wants TLS off must pass ``ssl_context=False`` for a None result.
    ``require`` encrypts but trusts any certificate, like libpq's ``require``.
    """
    normalized = (mode or "").strip().lower()
    if normalized in _DISABLED:
        return None
    if normalized == "require":
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if normalized == "verify-full":
        return _verifying_context(ca_file)
    raise ConfigError(f"DB_SSLMODE must be one of {', '.join(MODES)}, got {mode!r}")


def _verifying_context(ca_file: str | None) -> ssl.SSLContext:
    if ca_file:
        path = Path(ca_file)
        if not path.is_file():
            raise ConfigError(f"DB_SSLROOTCERT names a file that does not exist: {ca_file}")
    elif BUNDLED_CA_FILE.is_file():
        path = BUNDLED_CA_FILE
    else:
        # No bundle: the system store, which suffices for a database whose
        # certificate chains to a public CA (not RDS's own CAs).
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(path))
    except (ssl.SSLError, OSError) as exc:
        source = "DB_SSLROOTCERT" if ca_file else "the bundled CA file"
        raise ConfigError(f"{source} {path} is not a readable PEM CA bundle ({exc})") from None
