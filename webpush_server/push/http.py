"""A small HTTP/1.1 client for push services: keep-alive pools per origin on bare asyncio.

Push requests are one shape (POST, a few headers, a small body, a small answer), so a general
client's per-request machinery is mostly overhead: aiohttp measured ~200 µs of CPU per request
here, more than the encryption. This client also resolves names itself and connects to exactly
the address it checked, so DNS rebinding cannot slip an internal address in between.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from .hosts import HostPolicy, check_resolved

MAX_HEADER_LINES = 100
# We keep 300 characters of an error body; larger bodies are not worth reading to reuse a socket.
MAX_BODY = 64 * 1024
DNS_TTL = 60.0
IDLE_TIMEOUT = 55.0  # below the 60 s idle timeouts push services and proxies commonly use
# A request target is visible ASCII: no spaces, controls or anything beyond U+007E.
_UNSAFE_IN_TARGET = re.compile(r"[^\x21-\x7e]")


class ProtocolError(ConnectionError):
    """The server's answer was not HTTP/1.x we can read."""


class InvalidRequest(ValueError):
    """We cannot write this request (its target or a header): no connection was touched."""


@dataclass(frozen=True, slots=True)
class Response:
    """Status, lower-cased headers and (a bounded) body."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections to one origin (scheme, host, port)."""

    def __init__(
        self, origin: str, policy: HostPolicy, ssl_context: ssl.SSLContext, max_idle: int
    ) -> None:
        parts = urlsplit(origin)
        self.host = parts.hostname or ""
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.netloc = parts.netloc
        self._policy = policy
        self._ssl = ssl_context if self.tls else None
        self._idle: deque[_Connection] = deque()
        self._max_idle = max_idle
        self._addresses: list[str] = []
        self._resolved_at = -DNS_TTL

    async def _resolve(self) -> list[str]:
        if time.monotonic() - self._resolved_at > DNS_TTL:
            infos = await asyncio.get_running_loop().getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM
            )
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            # Refuse internal addresses unless host:port is listed (raises EndpointRefused).
            check_resolved(self._policy, self.host, self.port, addresses)
            self._addresses, self._resolved_at = addresses, time.monotonic()
        return self._addresses

    async def _open(self) -> _Connection:
        error: OSError | None = None
        for address in await self._resolve():
            try:
                reader, writer = await asyncio.open_connection(
                    address,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                    limit=MAX_BODY,
                )
            except OSError as exc:
                error = exc
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _Connection(reader, writer)
        raise error or ConnectionError(f"no address for {self.host}")

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < IDLE_TIMEOUT and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    async def post(self, target: str, headers: dict[str, str], body: bytes) -> Response:
        """POST body to target (path and query) and return the response."""
        request = self._request(target, headers, body)
        conn = self._take_idle()
        if conn is not None:
            try:
                return await self._exchange(conn, request)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                # The server closed an idle connection before reading our request: no answer
                # came, so it never processed it. Retry once on a fresh connection.
                if getattr(exc, "partial_response", False):
                    raise
        return await self._exchange(await self._open(), request)

    def _request(self, target: str, headers: dict[str, str], body: bytes) -> bytes:
        """Return the request's bytes; raise InvalidRequest before any socket is used."""
        # HTTP/1.1 request lines and our header values are ASCII (RFC 9112, RFC 9110 5.5).
        if not self.netloc.isascii():
            raise InvalidRequest(f"host {self.netloc[:80]!r} is not ASCII (IDNA-encode it)")
        if not target.startswith("/") or _UNSAFE_IN_TARGET.search(target):
            if not target.isascii():
                raise InvalidRequest(f"request target {target[:80]!r} is not ASCII")
            raise InvalidRequest("request target must be a path without spaces or controls")
        for name, value in headers.items():
            if "\n" in value or "\r" in value:
                raise InvalidRequest("header values must not contain line breaks")
            if not value.isascii():
                raise InvalidRequest(f"header {name} is not ASCII")
        head = [f"POST {target} HTTP/1.1", f"Host: {self.netloc}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body

    async def _exchange(self, conn: _Connection, request: bytes) -> Response:
        try:
            conn.writer.write(request)
            response, keep_alive = await _read_response(conn.reader)
        except BaseException:
            conn.close()
            raise
        if keep_alive and len(self._idle) < self._max_idle:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        return response

    def close(self) -> None:
        """Close idle connections."""
        while self._idle:
            self._idle.pop().close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    """Read one response; return it and whether the connection may be reused."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("connection closed before a response")
        try:
            version, status_text = line.decode("latin-1").split(None, 2)[:2]
            status = int(status_text)
        except ValueError as exc:
            raise _partial(ProtocolError(f"bad status line {line[:80]!r}")) from exc
        headers = await _read_headers(reader)
        if status >= 200 or status == 101:
            break  # 1xx interim answers (100 Continue) precede the real one
    keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    try:
        if status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if not 0 <= length <= MAX_BODY:
                return Response(status, headers, b""), False
            body = await reader.readexactly(length)
        else:
            body = await reader.read(MAX_BODY)
            keep_alive = False
    except (ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise _partial(ProtocolError(f"bad response body: {exc}")) from exc
    return Response(status, headers, body), keep_alive


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            return headers
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    raise _partial(ProtocolError("too many header lines"))


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";", 1)[0].strip(), 16)
        if size == 0:
            await _read_headers(reader)  # trailers
            return bytes(body[:MAX_BODY])
        if len(body) + size > MAX_BODY:
            raise ValueError("chunked body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def _partial(error: Exception) -> Exception:
    # An answer had started: the request reached the server, so it must not be retried.
    error.partial_response = True  # type: ignore[attr-defined]
    return error


class Client:
    """Pools per origin, shared across batches by one worker process."""

    def __init__(self, policy: HostPolicy, *, max_idle_per_origin: int = 50) -> None:
        self._policy = policy
        self._pools: dict[str, Pool] = {}
        self._ssl = ssl.create_default_context()
        self._max_idle = max_idle_per_origin

    def pool(self, origin: str) -> Pool:
        """Return the connection pool for an origin."""
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = Pool(origin, self._policy, self._ssl, self._max_idle)
        return pool

    def close(self) -> None:
        """Close every idle connection."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
