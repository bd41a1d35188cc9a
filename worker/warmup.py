"""Warm the HTTP path once in the pool's supervisor, before it forks the workers.

httpx and anyio import parts of themselves, and huggingface_hub sets itself up, on the first
request; in a forking worker every job is a fresh fork, so without this each job would pay
that (~40 ms) again before its first token. A loopback server answering with one canned chat
stream exercises exactly the calls a job makes, without the model server (which may still be
loading when the pool starts).
"""

from __future__ import annotations

import asyncio
import json

from huggingface_hub import AsyncInferenceClient, ChatCompletionInputStreamOptions

from worker.model_server import http_client

_CHUNK = {
    "object": "chat.completion.chunk",
    "id": "",
    "created": 0,
    "model": "warm-up",
    "system_fingerprint": "warm-up",
    "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": None,
}
_USAGE = {
    **_CHUNK,
    "choices": [],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
_BODY = f"data: {json.dumps(_CHUNK)}\n\ndata: {json.dumps(_USAGE)}\n\ndata: [DONE]\n\n".encode()
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n"
    + f"content-length: {len(_BODY)}\r\n\r\n".encode()
    + _BODY
)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            await reader.readexactly(int(value))
    writer.write(_RESPONSE)
    await writer.drain()
    writer.close()


async def warm_up() -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        async with http_client(5.0) as http:
            await http.get(f"{url}/info")
        async with AsyncInferenceClient(base_url=url, timeout=5.0) as client:
            stream = await client.chat_completion(
                [{"role": "user", "content": "warm-up"}],
                stream=True,
                stream_options=ChatCompletionInputStreamOptions(include_usage=True),
                max_tokens=1,
            )
            async for _chunk in stream:
                pass
    finally:
        server.close()
        await server.wait_closed()
