"""The Lua scripts, loaded once per client and run with EVALSHA (reloaded on NOSCRIPT).

Pipelines call EVALSHA directly: redis-py's pipeline would ask SCRIPT EXISTS before every
execute, a round trip the hot path cannot afford.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

ScriptArg = str | int | float


def _source(name: str) -> str:
    return resources.files("infrastructure.redis").joinpath(f"{name}.lua").read_text()


@dataclass(frozen=True, slots=True)
class Call:
    script: AsyncScript
    keys: Sequence[str]
    args: Sequence[ScriptArg]


class Scripts:
    NAMES = (
        "register",
        "drop",
        "capacity",
        "open_section",
        "load_section",
        "claim",
        "release",
        "renew",
    )

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        loaded = {name: redis.register_script(_source(name)) for name in self.NAMES}
        self.register: AsyncScript = loaded["register"]
        self.drop: AsyncScript = loaded["drop"]
        self.capacity: AsyncScript = loaded["capacity"]
        self.open_section: AsyncScript = loaded["open_section"]
        self.load_section: AsyncScript = loaded["load_section"]
        self.claim: AsyncScript = loaded["claim"]
        self.release: AsyncScript = loaded["release"]
        self.renew: AsyncScript = loaded["renew"]

    async def run(self, call: Call) -> Any:
        return await call.script(keys=list(call.keys), args=list(call.args))

    async def run_many(self, calls: Sequence[Call]) -> list[Any]:
        """All calls in one pipelined round trip; a script missing from the server's cache
        (a restarted Redis) is loaded and that call alone is run again."""
        if len(calls) == 1:
            return [await self.run(calls[0])]
        pipe = self.redis.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        replies = await pipe.execute(raise_on_error=False)
        for i, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):
                replies[i] = await self.run(calls[i])
            elif isinstance(reply, Exception):
                raise reply
        return list(replies)
