"""Streaming a completion as SSE: chunks of a few words paced at the model's speed, and the
stream faults (cut, stall, malformed chunk, missing final event) played on the way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from sandbox.faults import Fault
from sandbox.latency import Pacing
from sandbox.wire import Completion, Frame, WireFormat

MALFORMED_DATA = '{"sandbox": "a malformed chunk, cut short'


@dataclass(frozen=True)
class Step:
    delay: float  # seconds to wait before the frame
    frame: Frame | None  # None: only the wait (a stall)
    tokens: int = 0


def plan(wire: WireFormat, c: Completion, pacing: Pacing, fault: Fault | None) -> tuple[list[Step], bool]:
    """The steps of the stream and whether the connection is to be cut after them."""
    after = fault.params.get("after_tokens") if fault else None
    per_token = 1 / fault["tokens_per_second"] if fault and fault.kind == "slow_stream" else pacing.per_token
    deltas = [Step(per_token * tokens, frame, tokens) for frame, tokens in wire.stream_body(c, after)]
    split = _steps_within(deltas, after) if after is not None else len(deltas)
    head = [Step(0.0, frame) for frame in wire.stream_head(c)]
    closing = [Step(0.0, frame) for frame in [*wire.stream_tail(c), wire.stream_final(c)]]
    steps = head + deltas[:split] + _from_fault_point(deltas[split:] + closing, fault, wire.delta_event)
    if steps:
        steps[0] = Step(steps[0].delay + pacing.first_token, steps[0].frame, steps[0].tokens)
    return steps, fault is not None and fault.kind == "stream_cut"


def _from_fault_point(rest: list[Step], fault: Fault | None, delta_event: str | None) -> list[Step]:
    """The steps after the fault's point in the stream, as the fault changes them."""
    kind = fault.kind if fault else None
    if kind == "stream_cut":
        return []
    if kind == "stream_stall":
        return [Step(fault["seconds"], None), *rest]
    if kind == "malformed_chunk":
        return [Step(0.0, Frame(MALFORMED_DATA, delta_event)), *rest]
    if kind == "no_done":
        return rest[:-1]
    return rest


def _steps_within(deltas: list[Step], tokens: int) -> int:
    """How many delta steps make up the first `tokens` tokens (all of them when there are fewer)."""
    total = 0
    for index, step in enumerate(deltas):
        if total >= tokens:
            return index
        total += step.tokens
    return len(deltas)


async def pause(seconds: float) -> None:
    if seconds > 0:
        await asyncio.sleep(seconds)


async def open_stream(request: web.Request, headers: dict) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache", **headers})
    await response.prepare(request)
    return response


async def play(request: web.Request, response: web.StreamResponse, steps: list[Step], cut: bool) -> bool:
    """Write the planned steps; when `cut`, close the connection after them, without the stream's end.
    False when the client went away first.

    Frames with no wait between them go out in one write: one system call instead of dozens.
    """
    pending: list[bytes] = []
    try:
        for step in steps:
            if step.delay > 0:
                await _flush(request, response, pending)
                await asyncio.sleep(step.delay)
            if step.frame is not None:
                pending.append(step.frame.encode())
        await _flush(request, response, pending)
    except ConnectionError:
        return False
    if cut and request.transport is not None:
        request.transport.close()  # after the bytes written so far, without the chunked terminator
    return True


async def _flush(request: web.Request, response: web.StreamResponse, pending: list[bytes]) -> None:
    if pending:
        # aiohttp drops writes to a closed connection without a word: look first.
        if request.transport is None or request.transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        await response.write(b"".join(pending))
        pending.clear()
