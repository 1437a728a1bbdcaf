"""What a fault does to the connection itself: a reset, or no answer at all."""

from __future__ import annotations

import asyncio
import socket
import struct

from aiohttp import web

DISCONNECT_POLL = 0.2  # seconds between checks that a no_response client is still there


def reset(request: web.Request) -> None:
    """Drop the connection with a TCP reset, before any response byte."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def until_disconnected(request: web.Request) -> None:
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(DISCONNECT_POLL)
