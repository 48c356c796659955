"""A private Redis Cluster for the cluster tests and `make bench-cluster`: `redis-server
--cluster-enabled yes` on free ports (each node in a folder of its own for nodes.conf),
joined by `redis-cli --cluster create` with no replicas; and a private single server for the
bench to compare with. The machine's own Redis is never touched."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import redis

from tests.servers import free_port

START_SECONDS = 30.0


@dataclass(frozen=True)
class Node:
    port: int
    node_id: str
    slots: tuple[tuple[int, int], ...]

    def serves(self, slot: int) -> bool:
        return any(low <= slot <= high for low, high in self.slots)


@dataclass
class RedisClusterNodes:
    ports: list[int]
    processes: list[subprocess.Popen[bytes]]
    root: Path

    @property
    def url(self) -> str:
        """Any node will do: the first."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def nodes(self) -> list[Node]:
        """The primaries and their slot ranges, from CLUSTER NODES."""
        with redis.Redis(port=self.ports[0], decode_responses=True) as client:
            table = client.execute_command("CLUSTER NODES")
        return sorted(
            (
                Node(
                    int(address.rsplit(":", 1)[1]),
                    node["node_id"],
                    tuple((int(low), int(high)) for low, high in node["slots"]),
                )
                for address, node in table.items()
                if "master" in node["flags"]
            ),
            key=lambda n: n.port,
        )

    def node_of(self, key: str) -> Node:
        """The primary serving `key`, by CLUSTER KEYSLOT on the server."""
        with redis.Redis(port=self.ports[0]) as client:
            slot = int(client.execute_command("CLUSTER KEYSLOT", key))
        return next(n for n in self.nodes() if n.serves(slot))


def _start_node(root: Path, port: int, bus: int | None) -> subprocess.Popen[bytes]:
    """A server on `port`; a cluster node with its bus on `bus` unless None."""
    folder = root / str(port)
    folder.mkdir()
    args = ["redis-server", "--port", str(port)]
    if bus is not None:
        args += ["--cluster-port", str(bus), "--cluster-enabled", "yes"]
        args += ["--cluster-config-file", "nodes.conf"]
    args += ["--bind", "127.0.0.1", "--dir", str(folder), "--save", "", "--appendonly", "no"]
    args += ["--protected-mode", "no", "--daemonize", "no", "--logfile", "redis.log"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def _wait(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        time.sleep(0.05)
    raise AssertionError(f"Redis Cluster: {what} within {START_SECONDS} s")


def _up(port: int) -> bool:
    with redis.Redis(port=port, socket_connect_timeout=1) as client:
        return bool(client.ping())


def _cluster_ok(ports: list[int]) -> bool:
    for port in ports:
        with redis.Redis(port=port, socket_connect_timeout=1, decode_responses=True) as client:
            info = client.execute_command("CLUSTER INFO")
            if info.get("cluster_state") != "ok" or int(info["cluster_known_nodes"]) != len(ports):
                return False
    return True


@contextlib.contextmanager
def _servers(count: int, cluster: bool) -> Iterator[RedisClusterNodes]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        raise AssertionError("a private Redis needs redis-server and redis-cli on PATH")
    root = Path(tempfile.mkdtemp(prefix="coursereg-redis-cluster-"))
    ports = [free_port() for _ in range(count)]
    processes = [_start_node(root, port, free_port() if cluster else None) for port in ports]
    try:
        for port in ports:
            _wait(partial(_up, port), f"node {port} up")
        yield RedisClusterNodes(ports, processes, root)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis_cluster(primaries: int = 3) -> Iterator[RedisClusterNodes]:
    """A cluster of `primaries` nodes (no replicas) whose slots are all served."""
    with _servers(primaries, cluster=True) as nodes:
        create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in nodes.ports)]
        subprocess.run(
            [*create, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=START_SECONDS,
        )
        _wait(lambda: _cluster_ok(nodes.ports), "every slot served")
        yield nodes


@contextlib.contextmanager
def redis_single() -> Iterator[RedisClusterNodes]:
    """One server, not in cluster mode."""
    with _servers(1, cluster=False) as node:
        yield node
