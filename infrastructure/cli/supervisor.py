"""The parent of `coursereg serve --processes N`: uvicorn's multiprocess supervisor, which
binds the socket once, starts N processes on it (multiprocessing's spawn), replaces one that
dies or stops answering its pings, and on SIGTERM or SIGINT sends each SIGTERM and waits for
them all. Imported only by `serve` with N > 1 (uvicorn stays out of `coursereg --help`)."""

from __future__ import annotations

import logging

from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess

log = logging.getLogger(__name__)


class Supervisor(Multiprocess):
    """uvicorn's, saying at ERROR that a process died (uvicorn says it at INFO) and
    remembering a process that could not start: uvicorn then stops all of them and
    returns as if asked to, and `failed` lets `serve` exit non-zero."""

    failed = False

    def keep_subprocess_alive(self) -> None:
        if not self.should_exit.is_set():
            for process in self.processes:
                code = process.process.exitcode
                if code == STARTUP_FAILURE:
                    self.failed = True
                    log.error("API process %s could not start: stopping them all", process.pid)
                elif code is not None:
                    log.error("API process %s exited with %s: starting another", process.pid, code)
        super().keep_subprocess_alive()
