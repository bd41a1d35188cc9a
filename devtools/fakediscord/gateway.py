"""Gateway sessions: sequence numbers, intents, shard routing, the resume buffer."""

from __future__ import annotations

import asyncio
import json
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

# Gateway opcodes.
DISPATCH = 0
HEARTBEAT = 1
IDENTIFY = 2
PRESENCE_UPDATE = 3
VOICE_STATE_UPDATE = 4
RESUME = 6
RECONNECT = 7
REQUEST_GUILD_MEMBERS = 8
INVALID_SESSION = 9
HELLO = 10
HEARTBEAT_ACK = 11

# Intents (discord.Intents bit values) that gate the events the fake sends.
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
GUILD_MESSAGE_TYPING = 1 << 11
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
DIRECT_MESSAGE_TYPING = 1 << 14
MESSAGE_CONTENT = 1 << 15
GUILD_PRESENCES = 1 << 8
PRIVILEGED_INTENTS = GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT
"""Intents an application must have ticked in the developer portal (else close 4014)."""

RESUME_BUFFER = 10_000


@dataclass
class Connection:
    """One WebSocket, with the zlib-stream compressor when the client asked for it."""

    ws: web.WebSocketResponse
    compressor: Any = None  # zlib compress object (zlib.compressobj has no public type)
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)

    @classmethod
    def open(cls, ws: web.WebSocketResponse, compress: str | None) -> Connection:
        compressor = zlib.compressobj() if compress == "zlib-stream" else None
        return cls(ws=ws, compressor=compressor)

    async def pump(self) -> None:
        """Write queued frames in order until told to stop (None) or the socket closes."""
        while (text := await self.outbox.get()) is not None:
            if self.ws.closed:
                return
            try:
                if self.compressor is not None:
                    data = self.compressor.compress(text.encode())
                    data += self.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except ConnectionError:
                return

    def send(self, payload: dict[str, Any]) -> None:
        self.outbox.put_nowait(json.dumps(payload, separators=(",", ":")))


@dataclass
class Session:
    session_id: str
    intents: int
    shard: tuple[int, int] | None
    sequence: int = 0
    connection: Connection | None = None
    invalidated: bool = False
    buffer: deque[tuple[int, dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=RESUME_BUFFER)
    )
    identified_at: float = 0.0

    def routes(self, guild_id: int | None) -> bool:
        """Whether an event for this guild (None: a DM) goes to this session's shard."""
        if self.shard is None:
            return True
        shard_id, shard_count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (guild_id >> 22) % shard_count == shard_id

    def dispatch(self, event: str, data: Any) -> None:
        self.sequence += 1
        payload = {"op": DISPATCH, "t": event, "s": self.sequence, "d": data}
        self.buffer.append((self.sequence, payload))
        if self.connection is not None:
            self.connection.send(payload)

    def replay_after(self, sequence: int) -> list[dict[str, Any]]:
        return [payload for seq, payload in self.buffer if seq > sequence]
