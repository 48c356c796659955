"""A TCP proxy in front of Redis that can lose a reply, or hold it for a while.

Losing a reply is what a dropped connection does to a client that already sent its
commands: Redis ran them, the client never hears back. `LossyProxy.lose_reply(...)` arms
that once: the next request whose commands match is forwarded, its replies are read from
Redis, and then the client's connection is cut (reset) instead of forwarding them.
`delay_reply` holds those replies for a while and then forwards them.

Written here because the fault must know RESP: it targets one command, and cuts only after
Redis has answered it (byte-level fault proxies such as toxiproxy cut by timing or volume).

How it counts (RESP framing, kept honest), and its limits:
- A "request" is the commands the proxy reads from a client in one read (up to
  `READ_SIZE`). A redis-py pipeline is one write and on loopback arrives in one read; one
  larger than a read, or split by TCP, is several requests, and only the one holding the
  match loses its replies (the rest were answered). Every reply of that request is lost,
  not only the matching command's. A command is forwarded only once complete, so a
  request never ends mid-command.
- Requests and replies are parsed (RESP2; RESP3 types too, its pushes and attributes are
  not counted as replies) to count the replies each connection owes. Replies to earlier
  requests still in flight are forwarded; the cut comes once the reply to the request's
  last command has arrived, so Redis ran every command of it. After a matching request
  nothing more from that client reaches Redis.
- A subscribed connection (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, MONITOR) gets messages it
  did not ask for, so replies cannot be counted: it is never matched.
- A request answered NOSCRIPT did not run (another test flushed the script cache): its
  replies are forwarded and the fault stays armed for the next match (the reload's call).
- One fault fires once, on the first matching request of any connection. Matching is on
  bytes: every marker must occur in one command's arguments (a script's sha, a student id),
  and `command` names the command exactly (`SET`, `EVALSHA`).
- The cut is a reset of both connections (redis-py: ConnectionError while reading). A
  delay holds the link's replies in order, so later ones on that connection wait too.
- Upstream is a plain redis://host:port (no TLS, no unix socket, no cluster redirects).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from tests.servers import bound_socket

READ_SIZE = 65536
UNCOUNTED_STARTS = (b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE", b"MONITOR")

Command = list[bytes]


def _line(buffer: bytes, start: int) -> tuple[bytes, int] | None:
    end = buffer.find(b"\r\n", start)
    return None if end < 0 else (buffer[start:end], end + 2)


def parse_command(buffer: bytes, start: int) -> tuple[Command, int] | None:
    """One client command from `start` (a RESP array of bulk strings, or an inline
    command) and where it ends; None while incomplete."""
    line = _line(buffer, start)
    if line is None:
        return None
    head, pos = line
    if not head.startswith(b"*"):
        return head.split(), pos
    args = []
    for _ in range(int(head[1:])):
        line = _line(buffer, pos)
        if line is None:
            return None
        size, pos = int(line[0][1:]), line[1]
        if len(buffer) < pos + size + 2:
            return None
        args.append(buffer[pos : pos + size])
        pos += size + 2
    return args, pos


def parse_reply(buffer: bytes, start: int) -> tuple[int, bool] | None:
    """Where one server reply from `start` ends, and whether it answers a command (a RESP3
    push or attribute does not); None while incomplete."""
    line = _line(buffer, start)
    if line is None:
        return None
    head, pos = line
    kind, rest = head[:1], head[1:]
    if not kind:
        raise ValueError("not RESP: an empty line")
    if kind in b"+-:_,#(":
        return pos, True
    if kind in b"$!=":
        size = int(rest)
        end = pos if size < 0 else pos + size + 2
        return (end, True) if len(buffer) >= end else None
    if kind in b"*~%>|":
        count = int(rest) * (2 if kind in b"%|" else 1)
        for _ in range(max(count, 0)):
            inner = parse_reply(buffer, pos)
            if inner is None:
                return None
            pos = inner[0]
        return pos, kind not in b">|"
    raise ValueError(f"not RESP: {head[:40]!r}")


@dataclass(eq=False)
class Fault:
    """One armed fault. `fired` is set once its request's replies were lost (or held and
    then forwarded); `commands` are that request's commands, for a test to check."""

    markers: tuple[bytes, ...]
    command: bytes | None
    delay: float | None  # None: lose the replies
    fired: asyncio.Event = field(default_factory=asyncio.Event)
    commands: list[Command] = field(default_factory=list)

    def matches(self, command: Command) -> bool:
        if not command or (self.command is not None and command[0].upper() != self.command):
            return False
        return all(any(m in arg for arg in command) for m in self.markers)


@dataclass
class _Pending:
    fault: Fault
    after: int  # replies owed before the request's first command
    last: int  # the reply number of its last command
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # forwarded after all


class _Link:
    """One client connection and its own connection to Redis."""

    def __init__(
        self,
        proxy: LossyProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.client_reader, self.client_writer = client
        self.server_reader, self.server_writer = server
        self.sent = 0
        self.answered = 0
        self.uncounted = False
        self.pending: _Pending | None = None

    async def run(self) -> None:
        pumps = [asyncio.create_task(self._requests()), asyncio.create_task(self._replies())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self.cut()

    def cut(self) -> None:
        self.client_writer.transport.abort()
        self.server_writer.transport.abort()

    async def _requests(self) -> None:
        buffer = b""
        while data := await self.client_reader.read(READ_SIZE):
            buffer += data
            commands, used = [], 0
            while (parsed := parse_command(buffer, used)) is not None:
                commands.append(parsed[0])
                used = parsed[1]
            if not commands:
                continue
            chunk, buffer = buffer[:used], buffer[used:]
            self.uncounted |= any(c and c[0].upper() in UNCOUNTED_STARTS for c in commands)
            armed = not self.uncounted and self.pending is None
            fault = self.proxy.take_fault(commands) if armed else None
            pending = None
            if fault is not None:
                fault.commands = commands
                pending = _Pending(fault, self.sent, self.sent + len(commands))
                self.pending = pending
            self.sent += len(commands)
            self.server_writer.write(chunk)
            await self.server_writer.drain()
            if pending is not None and pending.fault.delay is None:
                await pending.settled.wait()  # nothing more reaches Redis unless re-armed

    async def _replies(self) -> None:
        buffer = b""
        held: list[bytes] = []
        while data := await self.server_reader.read(READ_SIZE):
            buffer += data
            start, out = 0, []
            while (parsed := parse_reply(buffer, start)) is not None:
                end, counted = parsed
                reply, start = buffer[start:end], end
                self.answered += counted
                pending = self.pending
                if pending is None or self.answered <= pending.after:
                    out.append(reply)
                    continue
                held.append(reply)
                if self.answered == pending.last:
                    self.pending = None
                    if await self._settle(pending, out, held):
                        return  # run() cuts both connections
                    out, held = [], []
            buffer = buffer[start:]
            self.client_writer.write(b"".join(out))
            await self.client_writer.drain()

    async def _settle(self, pending: _Pending, out: list[bytes], held: list[bytes]) -> bool:
        """Every reply of the matching request is in (`held`, after `out`): lose them
        (True: cut the link now), or hold them a while, or pass them on if they show the
        request did not run."""
        fault = pending.fault
        if any(r.startswith(b"-NOSCRIPT") for r in held):
            self.client_writer.write(b"".join(out + held))
            self.proxy.rearm(fault)
            pending.settled.set()
            return False
        self.client_writer.write(b"".join(out))
        if fault.delay is None:
            await self.client_writer.drain()
            fault.fired.set()
            return True
        await self.client_writer.drain()
        await asyncio.sleep(fault.delay)
        self.client_writer.write(b"".join(held))
        fault.fired.set()
        return False


class LossyProxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "redis" or parts.hostname is None:
            raise ValueError("the proxy fronts a redis://host:port URL")
        self.upstream_url = upstream_url
        self.upstream = (parts.hostname, parts.port or 6379)
        self.url = ""
        self.connections = 0  # accepted so far
        self._faults: list[Fault] = []
        self._links: set[_Link] = set()
        self._serving: set[asyncio.Task[None]] = set()

    def lose_reply(self, *markers: str | bytes, command: str | None = None) -> Fault:
        """Lose the replies of the next request with a command matching (module doc)."""
        return self._arm(markers, command, None)

    def delay_reply(
        self, *markers: str | bytes, seconds: float, command: str | None = None
    ) -> Fault:
        """Hold the replies of the next matching request for `seconds`, then forward them."""
        return self._arm(markers, command, seconds)

    def _arm(
        self, markers: Sequence[str | bytes], command: str | None, delay: float | None
    ) -> Fault:
        encoded = tuple(m.encode() if isinstance(m, str) else m for m in markers)
        name = command.upper().encode() if command else None
        fault = Fault(encoded, name, delay)
        self._faults.append(fault)
        return fault

    def take_fault(self, commands: Sequence[Command]) -> Fault | None:
        for fault in self._faults:
            if any(fault.matches(c) for c in commands):
                self._faults.remove(fault)
                return fault
        return None

    def rearm(self, fault: Fault) -> None:
        self._faults.insert(0, fault)

    async def _serve_link(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        try:
            server = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.transport.abort()
            self._serving.discard(task)
            return
        link = _Link(self, (client_reader, client_writer), server)
        self._links.add(link)
        try:
            await link.run()
        finally:
            self._links.discard(link)
            self._serving.discard(task)

    @classmethod
    @contextlib.asynccontextmanager
    async def serving(cls, upstream_url: str) -> AsyncIterator[LossyProxy]:
        """A proxy on a free local port in front of `upstream_url`; `url` is its redis://
        URL (same database and credentials)."""
        proxy = cls(upstream_url)
        sock = bound_socket()
        port = sock.getsockname()[1]
        server = await asyncio.start_server(proxy._serve_link, sock=sock)
        parts = urlsplit(upstream_url)
        auth = parts.netloc.rpartition("@")[0]
        netloc = f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}"
        proxy.url = urlunsplit(parts._replace(netloc=netloc))
        try:
            yield proxy
        finally:
            server.close()
            for link in list(proxy._links):
                link.cut()
            await asyncio.gather(*proxy._serving, return_exceptions=True)
            await server.wait_closed()
