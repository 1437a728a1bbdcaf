"""The Lua the stores run: one file a script under orchestrator/store/lua/, loaded here.

A script's header says what it takes:

    -- KEYS: totals, held, until
    -- ARGV: now, limit_micro, request_id, amount_micro, expires_at, ttl
    -- include: live_budget

Callers pass ARGV by name (`Lua.args`), in any order; a last name written `*turn` takes a
list that goes at the end. `include` puts a file of lua/lib/ before the body (a function or
a prelude several scripts share). Every script also gets `STATUS` and `is_terminal(status)`,
made from orchestrator.core.job.Status, so that Python and Lua spell a request's states the
same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import redis
from redis.client import Pipeline
from redis.commands.core import Script

from orchestrator.core.job import TERMINAL, Status

_HEADER = ("-- KEYS:", "-- ARGV:", "-- include:")


def _status_prelude() -> str:
    names = ", ".join(f"{status.name.lower()} = '{status.value}'" for status in Status)
    terminal = " or ".join(f"status == '{status.value}'" for status in sorted(TERMINAL))
    return f"local STATUS = {{{names}}}\nlocal function is_terminal(status) return {terminal} end\n"


@dataclass(frozen=True)
class LuaSource:
    name: str
    text: str  # what Redis runs: the status prelude, the included files, the body
    argv: tuple[str, ...]
    rest: str | None  # the name of the trailing list, if any


def _field(lines: list[str], header: str) -> list[str]:
    for line in lines:
        if line.startswith(header):
            return [part.strip() for part in line[len(header):].split(",") if part.strip()]
    return []


@cache
def source(name: str) -> LuaSource:
    folder = resources.files("orchestrator.store").joinpath("lua")
    body = folder.joinpath(f"{name}.lua").read_text()
    lines = body.splitlines()
    argv = _field(lines, _HEADER[1])
    rest = argv.pop()[1:] if argv and argv[-1].startswith("*") else None
    libs = [folder.joinpath("lib", f"{lib}.lua").read_text() for lib in _field(lines, _HEADER[2])]
    return LuaSource(name, "\n".join([_status_prelude(), *libs, body]), tuple(argv), rest)


class Lua:
    """A script of lua/ registered with a client (run by its hash, loaded when Redis lacks it)."""

    def __init__(self, client: redis.Redis, name: str):
        self.source = source(name)
        self.script: Script = client.register_script(self.source.text)
        self._names = frozenset(self.source.argv) | ({self.source.rest} if self.source.rest else set())

    def args(self, **named) -> list:
        """ARGV in the script's order from named values; a missing or unknown name is an error."""
        if named.keys() != self._names:
            raise TypeError(f"{self.source.name}.lua takes {sorted(self._names)}, got {sorted(named)}")
        values = [named[name] for name in self.source.argv]
        return values + list(named[self.source.rest]) if self.source.rest else values

    def __call__(self, keys: list[str], client: redis.Redis | Pipeline | None = None, **named):
        return self.script(keys=keys, args=self.args(**named), client=client)
