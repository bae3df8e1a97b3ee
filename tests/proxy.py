"""A small asyncio forward proxy for the tests: HTTP (absolute-form and CONNECT) and
SOCKS5, both with username/password, counting what goes through them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

__all__ = ["LoopbackProxy", "running_proxy"]


@dataclass
class LoopbackProxy:
    """What the proxy saw; `url` carries the credentials it demands."""

    kind: str
    username: str
    password: str
    port: int = 0
    connections: int = 0
    tunnels: list[tuple[str, int]] = field(default_factory=list)
    refused_auth: int = 0

    @property
    def url(self) -> str:
        return f"{self.kind}://{self.username}:{self.password}@127.0.0.1:{self.port}"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _relay(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    await asyncio.gather(_pipe(client[0], upstream[1]), _pipe(upstream[0], client[1]))


async def _http(
    proxy: LoopbackProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, version = request_line.split(" ", 2)
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    expected = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode()
    if headers.get("proxy-authorization") != f"Basic {expected}":
        proxy.refused_auth += 1
        writer.write(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n"
            b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n'
        )
        await writer.drain()
        writer.close()
        return
    if method == "CONNECT":
        host, port = target.rsplit(":", 1)
        upstream = await asyncio.open_connection(host, int(port))
        proxy.tunnels.append((host, int(port)))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await _relay((reader, writer), upstream)
        return
    # absolute-form: http://host:port/path -> origin-form on a connection to host:port
    rest = target.split("://", 1)[1]
    authority, _, path = rest.partition("/")
    host, _, port = authority.partition(":")
    upstream = await asyncio.open_connection(host, int(port or 80))
    proxy.tunnels.append((host, int(port or 80)))
    kept = [line for line in header_lines if not line.lower().startswith("proxy-")]
    upstream[1].write(
        f"{method} /{path} {version}\r\n".encode("latin-1")
        + "\r\n".join(kept).encode("latin-1")
    )
    await upstream[1].drain()
    # Later requests on this connection keep the absolute form; the server takes it.
    await _relay((reader, writer), upstream)


async def _socks5(
    proxy: LoopbackProxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    version, count = await reader.readexactly(2)
    methods = await reader.readexactly(count)
    if version != 5 or 2 not in methods:
        proxy.refused_auth += 1
        writer.write(b"\x05\xff")
        writer.close()
        return
    writer.write(b"\x05\x02")
    _, user_length = await reader.readexactly(2)
    user = (await reader.readexactly(user_length)).decode()
    (password_length,) = await reader.readexactly(1)
    password = (await reader.readexactly(password_length)).decode()
    if (user, password) != (proxy.username, proxy.password):
        proxy.refused_auth += 1
        writer.write(b"\x01\x01")
        writer.close()
        return
    writer.write(b"\x01\x00")
    _, _command, _, address_type = await reader.readexactly(4)
    if address_type == 1:
        host = ".".join(str(octet) for octet in await reader.readexactly(4))
    elif address_type == 3:
        (length,) = await reader.readexactly(1)
        host = (await reader.readexactly(length)).decode()
    else:
        writer.write(b"\x05\x08\x00\x01" + bytes(6))
        writer.close()
        return
    (port,) = struct.unpack("!H", await reader.readexactly(2))
    upstream = await asyncio.open_connection(host, port)
    proxy.tunnels.append((host, port))
    writer.write(b"\x05\x00\x00\x01" + bytes(4) + b"\x00\x00")
    await writer.drain()
    await _relay((reader, writer), upstream)


@contextlib.asynccontextmanager
async def running_proxy(
    kind: str, username: str = "user", password: str = "s3cret-pw"
) -> AsyncIterator[LoopbackProxy]:
    """A proxy of `kind` ("http" or "socks5") on a free loopback port."""
    proxy = LoopbackProxy(kind=kind, username=username, password=password)
    handler = _http if kind == "http" else _socks5
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proxy.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(proxy, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            writer.close()
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    proxy.port = server.sockets[0].getsockname()[1]
    try:
        yield proxy
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
