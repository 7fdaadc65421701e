"""A throwaway PostgreSQL server on loopback for the test session.

`start_test_server()` returns a running `LocalCluster` (or, when SAFEPOOL_TEST_POSTGRES_URL
is set, an `ExternalServer` that starts nothing).  Both have `.server`, a `PostgresServer`
describing how to connect, and an idempotent `.stop()`.

The local cluster:
  * installs the Debian `postgresql` packages with apt-get if no server binaries are found
    under /usr/lib/postgresql/*/bin (root only);
  * runs initdb into a fresh temporary directory (on /dev/shm when that has room: much
    faster than disk) owned by the `postgres` system user (via `runuser -u postgres --`
    when we are root), with scram-sha-256 password authentication for TCP connections
    from 127.0.0.1, listening only on 127.0.0.1 on a free port, and the unix socket inside
    the temporary directory (trust, reachable only by its owner and root; used for the
    initial set-up as superuser);
  * creates the LOGIN CREATEDB role `safepool_test` with a random password and the
    database `safepool_test` owned by it;
  * is stopped and its directory removed by `.stop()`, by an atexit hook, and, if this
    Python process dies without either running (SIGKILL, SIGTERM), by a small watchdog
    process that notices its stdin pipe closing.

This file can also be run directly: `python tests/pg_server.py` starts a server, prints its
URL and waits for Ctrl-C (handy for poking at the test database by hand).
"""

from __future__ import annotations

import atexit
import dataclasses
import fcntl
import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import quote, unquote, urlsplit

ENV_URL = "SAFEPOOL_TEST_POSTGRES_URL"
ROLE = "safepool_test"
DATABASE = "safepool_test"
SERVER_BIN_GLOB = "/usr/lib/postgresql/*/bin/pg_ctl"
HOST = "127.0.0.1"

Log = Callable[[str], None]


class PgServerError(RuntimeError):
    """The test PostgreSQL server could not be provided; the message says which step failed."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclasses.dataclass(frozen=True)
class PostgresServer:
    """How to reach one database: `url` has no password, `url_with_password` has it."""

    host: str
    port: int
    user: str
    password: str = dataclasses.field(repr=False)
    dbname: str
    query: str = ""  # extra URL query (e.g. sslmode=...) kept from an external URL

    @property
    def url(self) -> str:
        return self._url(with_password=False)

    @property
    def url_with_password(self) -> str:
        return self._url(with_password=True)

    def for_database(self, dbname: str) -> "PostgresServer":
        """The same server and role, another database."""
        return dataclasses.replace(self, dbname=dbname)

    def _url(self, *, with_password: bool) -> str:
        userinfo = quote(self.user, safe="")
        if with_password:
            userinfo += ":" + quote(self.password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        url = f"postgresql://{userinfo}@{host}:{self.port}/{quote(self.dbname, safe='')}"
        return f"{url}?{self.query}" if self.query else url


# --------------------------------------------------------------------------- helpers


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(could not read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _run(step: str, cmd: list[str], *, log_file: Path | None = None, **kwargs) -> str:
    """Run a command; on failure raise PgServerError naming the step, with its output."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    except OSError as exc:
        raise PgServerError(f"PostgreSQL test server: {step} failed: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        message = [
            f"PostgreSQL test server: {step} failed (exit status {proc.returncode}).",
            f"command: {' '.join(cmd)}",
        ]
        output = (proc.stdout + proc.stderr).strip()
        if output:
            message.append("output (last lines):\n" + "\n".join(output.splitlines()[-30:]))
        if log_file is not None:
            message.append(f"server log {log_file} (last lines):\n" + _tail(log_file))
        raise PgServerError("\n".join(message))
    return proc.stdout


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: drop to the postgres system user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if _is_root() else cmd


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- binaries


def find_server_bindir() -> Path | None:
    """The bin directory of the newest installed PostgreSQL server, if any."""

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", Path(path).parent.parent.name))

    candidates = [p for p in glob.glob(SERVER_BIN_GLOB) if os.access(p, os.X_OK)]
    return Path(max(candidates, key=version)).parent if candidates else None


def install_server(log: Log = _stderr) -> Path:
    """Install the Debian postgresql packages with apt-get; return the server bin directory."""
    if not _is_root():
        raise PgServerError(
            "PostgreSQL test server: no server binaries found "
            f"({SERVER_BIN_GLOB}) and we are not root, so they cannot be installed here. "
            f"Install the 'postgresql' package, or set {ENV_URL} to a server URL with password."
        )
    if shutil.which("apt-get") is None:
        raise PgServerError(
            f"PostgreSQL test server: no server binaries found ({SERVER_BIN_GLOB}) and apt-get "
            f"is not available. Install PostgreSQL, or set {ENV_URL}."
        )
    log(
        "\n*** safepool tests: no PostgreSQL server binaries found "
        f"({SERVER_BIN_GLOB}).\n*** Installing them now with "
        "'apt-get update && apt-get install -y postgresql' (this can take a minute) ...\n"
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "-y", "-q", "-o", "Dpkg::Options::=--force-confold", "--no-install-recommends"]
    _run("apt-get update", ["apt-get", "-q", "update"], env=env)
    # Install postgresql-common first and tell it not to create (and start) the distribution's
    # default 'main' cluster: the tests use their own throwaway cluster and nothing else
    # should be left running on the machine.
    _run("apt-get install postgresql-common", [*apt, "install", "postgresql-common"], env=env)
    conf = Path("/etc/postgresql-common/createcluster.conf")
    if conf.exists():
        text = conf.read_text()
        if not re.search(r"^\s*create_main_cluster\s*=\s*false", text, re.MULTILINE):
            text = re.sub(r"^\s*#?\s*create_main_cluster\s*=.*$", "", text, flags=re.MULTILINE)
            conf.write_text(text.rstrip("\n") + "\ncreate_main_cluster = false\n")
    _run("apt-get install postgresql", [*apt, "install", "postgresql"], env=env)
    bindir = find_server_bindir()
    if bindir is None:
        raise PgServerError(
            f"PostgreSQL test server: apt-get installed postgresql but {SERVER_BIN_GLOB} still "
            "matches nothing."
        )
    log(f"*** safepool tests: PostgreSQL installed ({bindir}).\n")
    return bindir


def ensure_server_bindir(log: Log = _stderr) -> Path:
    """The server's bin directory, installing it first if need be. Test processes running side
    by side (pytest-xdist workers) take turns, so apt-get runs once and never twice at a time."""
    with open(Path(tempfile.gettempdir()) / "safepool-pg-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return find_server_bindir() or install_server(log)


# --------------------------------------------------------------------------- servers


class ExternalServer:
    """A server given by SAFEPOOL_TEST_POSTGRES_URL; nothing is started or stopped."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise PgServerError(f"{ENV_URL} must be a postgresql:// URL")
        if not parts.username or parts.password is None:
            raise PgServerError(f"{ENV_URL} must include a user name and password")
        if not parts.hostname:
            raise PgServerError(f"{ENV_URL} must include a host")
        self.server = PostgresServer(
            host=parts.hostname,
            port=parts.port or 5432,
            user=unquote(parts.username),
            password=unquote(parts.password),
            dbname=unquote(parts.path.lstrip("/")) or unquote(parts.username),
            query=parts.query,
        )

    def stop(self) -> None:
        pass


class LocalCluster:
    """A fresh PostgreSQL cluster in a temporary directory; see the module docstring."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.tmp: Path | None = None
        self.port: int | None = None
        self.server: PostgresServer | None = None
        self._watchdog: subprocess.Popen | None = None

    @property
    def datadir(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "data"

    @property
    def logfile(self) -> Path:
        assert self.tmp is not None
        return self.tmp / "server.log"

    def start(self) -> PostgresServer:
        try:
            self._make_tmpdir()
            self._initdb()
            self._start_server()
            self._create_role_and_database()
        except BaseException:
            self.stop()
            raise
        return self.server

    def _make_tmpdir(self) -> None:
        base = _base_dir()
        self.tmp = Path(tempfile.mkdtemp(prefix="safepool-pg-", dir=base))
        if _is_root():
            try:
                shutil.chown(self.tmp, "postgres", "postgres")
            except (LookupError, OSError) as exc:
                raise PgServerError(
                    f"PostgreSQL test server: cannot give {self.tmp} to the postgres system "
                    f"user ({exc}); does the user exist?"
                ) from exc
        atexit.register(self.stop)
        self._start_watchdog()

    def _initdb(self) -> None:
        _run(
            "initdb",
            _as_postgres([
                str(self.bindir / "initdb"), "-D", str(self.datadir), "--username=postgres",
                "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                "--locale=C", "--no-sync",
            ]),
            cwd=self.tmp,
        )
        (self.datadir / "pg_hba.conf").write_text(
            "# written by tests/pg_server.py\n"
            "local all all trust\n"
            f"host  all all {HOST}/32 scram-sha-256\n"
        )
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# written by tests/pg_server.py\n"
                f"listen_addresses = '{HOST}'\n"
                f"unix_socket_directories = '{self.tmp}'\n"
                "password_encryption = 'scram-sha-256'\n"
                # A throwaway server: durability is not needed, speed is.
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
            )

    def _start_server(self, attempts: int = 5) -> None:
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            try:
                _run(
                    "pg_ctl start",
                    _as_postgres([
                        str(self.bindir / "pg_ctl"), "start", "-D", str(self.datadir),
                        "-l", str(self.logfile), "-w", "-t", "60", "-o", f"-p {self.port}",
                    ]),
                    log_file=self.logfile,
                    cwd=self.tmp,
                )
                return
            except PgServerError:
                # Someone may have taken the port between choosing and binding: retry.
                if attempt < attempts and "could not bind" in _tail(self.logfile, 10):
                    continue
                raise

    def _create_role_and_database(self) -> None:
        password = secrets.token_urlsafe(24)
        admin = (
            f"postgresql://postgres@/postgres?host={quote(str(self.tmp), safe='')}"
            f"&port={self.port}"
        )
        try:
            import adbc_driver_postgresql.dbapi as pg

            with pg.connect(admin, autocommit=True) as conn, conn.cursor() as cur:
                cur.execute(
                    f"CREATE ROLE {quote_ident(ROLE)} LOGIN CREATEDB "
                    f"PASSWORD {_quote_literal(password)}"
                )
                cur.execute(f"CREATE DATABASE {quote_ident(DATABASE)} OWNER {quote_ident(ROLE)}")
        except Exception as exc:
            raise PgServerError(
                f"PostgreSQL test server: creating role and database {ROLE!r} failed: {exc}\n"
                f"server log {self.logfile} (last lines):\n{_tail(self.logfile)}"
            ) from exc
        self.server = PostgresServer(HOST, self.port, ROLE, password, DATABASE)

    def _start_watchdog(self) -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--watchdog", str(self.bindir), str(self.tmp)]
        self._watchdog = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True
        )

    def stop(self) -> None:
        """Stop the server (if running) and remove the directory. Safe to call repeatedly."""
        atexit.unregister(self.stop)
        if self.tmp is not None:
            _stop_and_remove(self.bindir, self.tmp)
            self.tmp = None
        if self._watchdog is not None:
            self._watchdog.stdin.close()  # nothing left for it to do: it exits on EOF
            try:
                self._watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
            self._watchdog = None


def _base_dir() -> str:
    """Where to put the cluster: a roomy /dev/shm (tmpfs: creating a database, ~300 files,
    is several times faster than on disk), else the temporary directory."""
    try:
        shm = os.statvfs("/dev/shm")
        if shm.f_bavail * shm.f_frsize >= 1 << 30 and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    except OSError:
        pass
    base = tempfile.gettempdir()
    # The socket path must stay short (~100 bytes) and, as root, reachable by postgres.
    if len(base) > 60 or (_is_root() and not _world_traversable(base)):
        base = "/tmp"
    return base


def _world_traversable(path: str) -> bool:
    p = Path(path).resolve()
    return all(os.stat(d).st_mode & 0o001 for d in [p, *p.parents])


def _stop_and_remove(bindir: Path, tmp: Path) -> None:
    datadir = tmp / "data"
    pidfile = datadir / "postmaster.pid"
    if pidfile.exists():
        pg_ctl = str(bindir / "pg_ctl")
        for mode in ("fast", "immediate"):
            result = subprocess.run(
                _as_postgres([pg_ctl, "stop", "-D", str(datadir), "-m", mode, "-w", "-t", "30"]),
                capture_output=True, cwd=tmp,
            )
            if result.returncode == 0 or not pidfile.exists():
                break
        else:
            try:  # last resort
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
                time.sleep(0.5)
            except (OSError, ValueError, IndexError):
                pass
    shutil.rmtree(tmp, ignore_errors=True)


def start_test_server(log: Log = _stderr) -> LocalCluster | ExternalServer:
    """The server for the test session: SAFEPOOL_TEST_POSTGRES_URL, or a fresh local cluster."""
    url = os.environ.get(ENV_URL)
    if url:
        return ExternalServer(url)
    cluster = LocalCluster(ensure_server_bindir(log))
    cluster.start()
    return cluster


# --------------------------------------------------------------------------- per-test databases


class DatabaseAdmin:
    """Creates and drops per-test databases over one autocommit connection as the test role.

    (Opening an ADBC connection costs ~0.1-0.2 s, so one is kept for the whole session.)
    """

    def __init__(self, server: PostgresServer) -> None:
        import adbc_driver_postgresql.dbapi as pg

        self.server = server
        try:
            self._conn = pg.connect(server.url_with_password, autocommit=True)
        except Exception as exc:
            raise PgServerError(
                f"PostgreSQL test server: cannot connect to {server.url}: {exc}"
            ) from exc
        self._cur = self._conn.cursor()
        self._cur.execute("SELECT current_setting('server_version_num')::int")
        version = int(self._cur.fetchone()[0])
        # FILE_COPY (15+) copies the template's files instead of WAL-logging every block:
        # ~0.03 s instead of ~0.2 s per database.
        self._create_options = " STRATEGY = FILE_COPY" if version >= 150000 else ""
        self._drop_options = " WITH (FORCE)" if version >= 130000 else ""

    def create(self, name: str) -> PostgresServer:
        """Create an empty database owned by the test role; return how to reach it."""
        self._cur.execute(f"CREATE DATABASE {quote_ident(name)}{self._create_options}")
        return self.server.for_database(name)

    def drop(self, name: str) -> None:
        """Drop a database, disconnecting anyone still in it (13+)."""
        self._cur.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)}{self._drop_options}")

    def close(self) -> None:
        self._cur.close()
        self._conn.close()


# --------------------------------------------------------------------------- command line


def _watchdog_main(bindir: str, tmp: str) -> None:
    """Wait for our parent to close stdin (or die), then clean up whatever it left."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.stdin.buffer.read()
    if Path(tmp).exists():
        _stop_and_remove(Path(bindir), Path(tmp))


def _main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    cluster = start_test_server()
    try:
        print(f"url: {cluster.server.url}\npassword: {cluster.server.password}")
        print(f"url_with_password: {cluster.server.url_with_password}\nCtrl-C to stop.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cluster.stop()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--watchdog":
        _watchdog_main(sys.argv[2], sys.argv[3])
    else:
        _main()
