"""The PostgreSQL connection: opened lazily, kept for the life of the container.

A Lambda container handles one invocation at a time, so one connection per
process is enough and saves a TCP + auth handshake on every warm invocation.
Named queries run as server-side prepared statements (one round trip each).
A connection found broken (the server restarted, an idle timeout cut it) is
re-opened once and the statement retried: enqueues carry their own ids and
outcome writes are guarded by attempt, so a repeat is harmless. The claim is
the exception: it is not resent, and the worker instead reads back what a
claim whose answer was lost had taken.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import pg8000.native
from pg8000 import core as pg_core
from pg8000.converters import make_params
from pg8000.exceptions import DatabaseError, InterfaceError

from ..config import DatabaseSettings, Settings
from ..errors import ConfigError, ConnectionLost, DatabaseUnavailable
from . import queries

# SQLSTATEs that mean "this connection is gone", not "this statement is wrong".
_DISCONNECT_CODES = {"57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"}
T = TypeVar("T")
_AUTH_FAILED = {"28P01", "28000"}


class Runner(Protocol):
    """Anything that can run SQL with ``:name`` parameters: a pg8000 native connection."""

    def run(self, sql: str, stream: Any = None, types: Any = None, **params: Any) -> Any: ...


def is_disconnect(exc: BaseException) -> bool:
    if isinstance(exc, InterfaceError | OSError | ConnectionError):
        return True
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return exc.args[0].get("C") in _DISCONNECT_CODES
    return False


def sqlstate(exc: BaseException) -> str | None:
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return exc.args[0].get("C")
    return None


def missing_schema(exc: BaseException) -> bool:
    """Undefined table (42P01): a database nobody has migrated."""
    return sqlstate(exc) == "42P01"


def connect(settings: DatabaseSettings, *, refresh_secret: bool = False) -> pg8000.native.Connection:
    """Open a new connection. Errors never carry the password."""
    host, port, name, user, password = (
        settings.host,
        settings.port,
        settings.name,
        settings.user,
        settings.password,
    )
    if settings.secret_arn:
        from .secrets import db_secret

        secret = db_secret(settings.secret_arn, refresh=refresh_secret)
        host = settings.host or secret.get("host")
        port = int(secret.get("port") or port)
        name = secret.get("dbname") or name
        user = secret.get("username") or user
        password = secret.get("password")
    if not host:
        raise ConfigError("DB_HOST (or DB_SECRET_ARN) must be set to reach the database")
    ssl_context: Any = False  # pg8000 reads None as "try TLS, verify nothing"
    if settings.sslmode != "disable":
        from .tls import ssl_context as make_ssl_context

        ssl_context = make_ssl_context(settings.sslmode, settings.sslrootcert)
    unix_sock = settings.unix_socket if host == settings.host else None
    kwargs: dict[str, Any] = {
        "user": user,
        "database": name,
        "password": password,
        "timeout": settings.connect_timeout,
        "application_name": "jobqueue",
        "startup_params": {"statement_timeout": str(settings.statement_timeout_ms)},
    }
    if unix_sock:
        kwargs["unix_sock"] = unix_sock
    else:
        kwargs.update(host=host, port=port, ssl_context=ssl_context)
    try:
        conn = pg8000.native.Connection(**kwargs)
    except (TimeoutError, InterfaceError, OSError) as exc:
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {host}:{port}: {_reason(exc)}") from None
    except DatabaseError as exc:
        if sqlstate(exc) in _AUTH_FAILED:
            raise DatabaseUnavailable(f"PostgreSQL at {host}:{port} refused the credentials for user {user!r}") from exc
        raise DatabaseUnavailable(f"PostgreSQL at {host}:{port} refused the connection: {_reason(exc)}") from None
    _no_delay(conn)
    # The connect timeout covered the handshake; from now on a statement may
    # take as long as the server lets it.
    sock = getattr(conn, "_usock", None)
    if sock is not None:
        sock.settimeout(settings.read_timeout)
    return conn


def _no_delay(conn: pg8000.native.Connection) -> None:
    """Turn off Nagle's algorithm: pg8000 sends Bind and Execute back to back,
    and a large Bind (a batch of ids) otherwise stalls ~40 ms on delayed ACKs."""
    sock = getattr(conn, "_usock", None)
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _run_prepared(conn: pg8000.native.Connection, statement: Any, params: dict[str, Any]) -> list[list[Any]]:
    """``statement.run(**params)``, its answer in one packet instead of three.

    pg8000 follows Bind and Execute with a Flush each, so the server sends
    BindComplete, then the rows, then (after the commit) ReadyForQuery, each
    on its own, and the client wakes up for each: about a tenth of a single
    enqueue's time. Sync alone is enough (the server answers everything then,
    errors included), so here Bind, Execute and Sync go out together and
    their whole answer comes back together. The rest is pg8000's own code
    (pinned in requirements.txt): its parameter conversion, message framing
    and message handling.
    """
    values = make_params(conn.py_types, statement.make_vals(params))
    bind = bytearray(pg_core.NULL_BYTE + statement.name_bin + pg_core.H_pack(0) + pg_core.H_pack(len(values)))
    encoding = conn._client_encoding
    for value in values:
        if value is None:
            bind += pg_core.i_pack(-1)
        else:
            data = value.encode(encoding)
            bind += pg_core.i_pack(len(data))
            bind += data
    bind += pg_core.H_pack(0)
    conn._send_message(pg_core.BIND, bind)
    sock = conn._sock
    pg_core._write(sock, pg_core.EXECUTE_MSG)
    pg_core._write(sock, pg_core.SYNC_MSG)
    pg_core._flush(sock)
    context = pg_core.Context(statement.statement, columns=statement.cols, input_funcs=statement.input_funcs)
    conn.handle_messages(context)
    return context.rows


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return str(exc.args[0].get("M", "error"))
    cause = exc.__cause__ or exc.__context__
    return f"{exc}" + (f" ({cause})" if cause else "")


class Database:
    """One lazily opened connection plus its prepared named queries."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self._conn: pg8000.native.Connection | None = None
        self._prepared: dict[str, Any] = {}
        self._in_transaction = False
        self._pid = os.getpid()

    @property
    def connection(self) -> pg8000.native.Connection:
        if self._conn is None or self._pid != os.getpid():
            self._open()
        assert self._conn is not None
        return self._conn

    def _open(self) -> None:
        self._forget()
        try:
            self._conn = connect(self.settings)
        except DatabaseUnavailable as exc:
            # A rotated password: the cached secret is stale, fetch it again once.
            if not (self.settings.secret_arn and isinstance(exc.__cause__, DatabaseError)):
                raise
            self._conn = connect(self.settings, refresh_secret=True)
        self._pid = os.getpid()

    def _forget(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - the connection is already broken
                pass
        self._conn = None
        self._prepared = {}
        self._in_transaction = False

    def close(self) -> None:
        self._forget()

    def run(self, name: str, *, resend: bool = True, **params: Any) -> list[list[Any]]:
        """Run a named query (a prepared statement), re-opening a broken connection once.

        With ``resend=False`` a lost connection raises ConnectionLost instead
        of sending the statement again: for a statement whose effect, should
        the first one have committed, the caller must recover differently.
        """
        return self._reconnecting(lambda: self._execute(name, params), name, resend)

    def _execute(self, name: str, params: dict[str, Any]) -> list[list[Any]]:
        """A query that reads the table is sent whole and planned for its values
        and the table at hand every time: a plan kept from a statement prepared
        while the table was empty (a warm container that polled an idle queue)
        would scan and sort a table since grown to millions of rows. Only the
        queries marked "plan: once", which read no table or only by a path
        that suits any size, are prepared and keep their plan."""
        conn = self.connection
        if name not in queries.planned_once():
            return conn.run(queries.query(name), **params)
        statement = self._prepared.get(name)
        if statement is None:
            statement = conn.prepare(queries.query(name))
            self._prepared[name] = statement
        return _run_prepared(conn, statement, params)

    def execute(self, text: str, **params: Any) -> Any:
        """Run literal SQL (migrations, session settings); retried like run."""
        return self._reconnecting(lambda: self.connection.run(text, **params), "a statement", True)

    def _reconnecting(self, action: Callable[[], T], what: str, resend: bool) -> T:
        try:
            return action()
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            in_transaction = self._in_transaction
            self._forget()
            if in_transaction:
                raise DatabaseUnavailable("the database connection was lost mid-transaction") from None
            if not resend:
                raise ConnectionLost(f"the database connection was lost during {what}") from None
        try:
            return action()
        except Exception as exc:
            if is_disconnect(exc):
                self._forget()
                raise DatabaseUnavailable("the database connection was lost and could not be re-opened") from None
            raise

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """BEGIN/COMMIT around a block; no silent retries inside it."""
        self.execute("BEGIN")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._in_transaction = False
            if self._conn is not None:
                try:
                    self._conn.run("ROLLBACK")
                except Exception:  # noqa: BLE001 - the original error matters more
                    self._forget()
            raise
        else:
            self._in_transaction = False
            self.connection.run("COMMIT")


def run(db: Database | Runner, name: str, *, resend: bool = True, **params: Any) -> list[list[Any]]:
    """Run a named query on our Database or on a caller's own pg8000 connection.

    A caller's connection may be inside the caller's transaction: we neither
    prepare statements on it nor retry, so the caller stays in charge.
    """
    if isinstance(db, Database):
        return db.run(name, resend=resend, **params)
    return db.run(queries.query(name), **params)


_default: Database | None = None


def default() -> Database:
    """The process-wide Database, built from the environment on first use."""
    global _default
    if _default is None:
        _default = Database(Settings.from_env().db)
    return _default


def set_default(database: Database | None) -> None:
    """Replace the process-wide Database (tests, the local stack)."""
    global _default
    if _default is not None and _default is not database:
        _default.close()
    _default = database
