"""Send a batch of Web Push requests and return one outcome per request.

Many requests are in flight at once, grouped per push service origin over pooled keep-alive
connections (aiohttp). Exceptions never escape for a single request: each becomes a result.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from .crypto import encrypt
from .hosts import EndpointRefused, HostPolicy, check_resolved, is_ip_literal
from .policy import Outcome, classify, parse_retry_after
from .vapid import VapidSigner

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PushRequest:
    """One message for one subscription."""

    key: int
    endpoint: str
    p256dh: str
    auth: str
    payload: bytes
    ttl: int
    urgency: str = "normal"
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    """What became of one request."""

    key: int
    outcome: Outcome
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None


class SafeResolver(AbstractResolver):
    """Resolve names, then refuse internal addresses unless host:port is listed (DNS rebinding)."""

    def __init__(self, policy: HostPolicy) -> None:
        self._policy = policy
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        check_resolved(self._policy, host, port, [r["host"] for r in results])
        return results

    async def close(self) -> None:
        await self._inner.close()


def origin_of(endpoint: str) -> str:
    """Return scheme://host[:port] of an endpoint: the VAPID audience."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class Sender:
    """Encrypts and sends batches; keeps one connection pool per push service across batches."""

    def __init__(
        self,
        signer: VapidSigner,
        policy: HostPolicy,
        *,
        concurrency_per_origin: int = 50,
        timeout: float = 10.0,
    ) -> None:
        self.signer = signer
        self.policy = policy
        self.concurrency = concurrency_per_origin
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,
                limit_per_host=self.concurrency,
                resolver=SafeResolver(self.policy),
                keepalive_timeout=60,
                ttl_dns_cache=60,
            )
            # No cookies, no content negotiation: push services need neither, and each costs
            # CPU on every request.
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
                headers={"User-Agent": "webpush-server"},
            )
        return self._session

    async def close(self) -> None:
        """Close pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, requests: Iterable[PushRequest]) -> list[PushResult]:
        """Send every request, many in flight per origin; return results in input order."""
        by_origin: dict[str, list[PushRequest]] = defaultdict(list)
        ordered = list(requests)
        for request in ordered:
            by_origin[origin_of(request.endpoint)].append(request)
        results: dict[int, PushResult] = {}
        client = self._client()

        async def run_origin(origin: str, batch: list[PushRequest]) -> None:
            try:
                # Once per origin and batch: the allow list may have changed since subscribe
                # time, and an IP literal never goes through the resolver.
                self._check_origin(origin)
            except EndpointRefused as exc:
                for request in batch:
                    results[request.key] = PushResult(
                        request.key, Outcome.REFUSED, error=f"endpoint {exc}"
                    )
                return
            gate = asyncio.Semaphore(self.concurrency)
            authorization = self.signer.authorization(origin)

            async def one(request: PushRequest) -> None:
                async with gate:
                    results[request.key] = await self._send_one(client, request, authorization)

            await asyncio.gather(*(one(r) for r in batch))

        await asyncio.gather(*(run_origin(o, b) for o, b in by_origin.items()))
        return [results[r.key] for r in ordered]

    async def _send_one(
        self, client: aiohttp.ClientSession, request: PushRequest, authorization: str
    ) -> PushResult:
        try:
            body = encrypt(request.payload, request.p256dh, request.auth)
        except ValueError as exc:
            return PushResult(request.key, Outcome.CONFIG_ERROR, error=f"encryption: {exc}")
        headers = {
            "TTL": str(max(0, request.ttl)),
            "Urgency": request.urgency,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Authorization": authorization,
        }
        if request.topic:
            headers["Topic"] = request.topic
        try:
            # encoded=True: endpoints are stored as the push service gave them; skip re-quoting.
            async with client.post(
                URL(request.endpoint, encoded=True),
                data=body,
                headers=headers,
                allow_redirects=False,
            ) as response:
                status = response.status
                text = "" if status < 300 else (await response.text(errors="replace"))[:300]
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except EndpointRefused as exc:
            return PushResult(request.key, Outcome.REFUSED, error=f"endpoint {exc}")
        except TimeoutError:
            return PushResult(request.key, Outcome.TRANSIENT, error="timeout")
        except aiohttp.ClientError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, EndpointRefused):
                return PushResult(request.key, Outcome.REFUSED, error=f"endpoint {cause}")
            return PushResult(request.key, Outcome.TRANSIENT, error=f"{type(exc).__name__}: {exc}")
        outcome = classify(status)
        error = None if outcome is Outcome.SENT else f"HTTP {status}: {text}".strip()
        if 300 <= status < 400:
            error = f"HTTP {status}: redirect not followed"
        return PushResult(request.key, outcome, status, error, retry_after)

    def _check_origin(self, origin: str) -> None:
        self.policy.check_endpoint(origin + "/")
        parts = urlsplit(origin)
        host = parts.hostname or ""
        if is_ip_literal(host):
            port = parts.port or (443 if parts.scheme == "https" else 80)
            check_resolved(self.policy, host, port, [host])


class SyncSender:
    """Runs a Sender on a private event loop, for synchronous RQ jobs."""

    def __init__(self, make_sender: Callable[[], Sender]) -> None:
        self._loop = asyncio.new_event_loop()
        self._sender = make_sender()

    def send(self, requests: list[PushRequest]) -> list[PushResult]:
        """Send a batch and wait for every result."""
        started = time.perf_counter()
        results = self._loop.run_until_complete(self._sender.send(requests))
        log.debug("sent %d pushes in %.3fs", len(requests), time.perf_counter() - started)
        return results

    def close(self) -> None:
        """Close connections and the loop."""
        self._loop.run_until_complete(self._sender.close())
        self._loop.close()
