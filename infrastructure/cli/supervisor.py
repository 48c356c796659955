"""The parent of `coursereg serve --processes N`: uvicorn's multiprocess supervisor, which
starts N processes (multiprocessing's spawn), replaces one that dies or stops answering its
pings, and on SIGTERM or SIGINT sends each SIGTERM and waits for them all. Imported only by
`serve` with N > 1 (uvicorn stays out of `coursereg --help`)."""

from __future__ import annotations

import logging
import socket

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger(__name__)


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to one address with SO_REUSEPORT: the kernel spreads new
    connections over them evenly (by a hash of the client's address and port). On one
    shared socket, as uvicorn has it, whichever process woke first took them: of 64
    connections opened at once, 51 went to one of two processes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Supervisor(Multiprocess):
    """uvicorn's, with a socket of its own for each process (`sockets`, one per process:
    listening_sockets). A process that dies is logged at ERROR (uvicorn says it at INFO)
    and its replacement gets its socket, so connections the kernel queued there wait for
    the replacement. A process that could not start (its lifespan raised) stops them all,
    as in uvicorn, and sets `failed`. uvicorn's SIGHUP, SIGTTIN and SIGTTOU (restart all,
    one more, one fewer) are not offered: they would hand every socket to one process."""

    failed = False

    def init_processes(self) -> None:
        for sock in self.sockets:
            process = Process(self.config, [sock])
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        """uvicorn's, but each replacement on the socket of the process it replaces."""
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # it may be alive but not answering its pings
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                log.error("API process %s could not start: stopping them all", process.pid)
                self.failed = True
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.error(
                "API process %s exited with %s: starting another", process.pid, process.exitcode
            )
            replacement = Process(self.config, [self.sockets[index]])
            replacement.start()
            self.processes[index] = replacement

    def handle_hup(self) -> None:
        log.warning("SIGHUP ignored: stop and start coursereg serve to restart its processes")

    def handle_ttin(self) -> None:
        log.warning("SIGTTIN ignored: the count of API processes is fixed (--processes)")

    def handle_ttou(self) -> None:
        log.warning("SIGTTOU ignored: the count of API processes is fixed (--processes)")
