"""Send a batch of Web Push requests and return one outcome per request.

Many requests are in flight at once, grouped per push service origin over pooled keep-alive
connections (push/http.py). Exceptions never escape for a single request: each becomes that
request's result, and the rest of the batch goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from .crypto import encrypt
from .hosts import EndpointRefused, HostPolicy, check_resolved, is_ip_literal
from .http import Client, InvalidRequest, Pool
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
    seconds: float | None = None  # request sent to response read, when one came


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
        self.timeout = timeout
        self._client = Client(policy, max_idle_per_origin=concurrency_per_origin)

    async def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    async def send(
        self,
        requests: Iterable[PushRequest],
        on_result: Callable[[PushResult], None] | None = None,
    ) -> list[PushResult]:
        """Send every request, many in flight per origin; return results in input order.

        Whatever goes wrong with one request (an endpoint we cannot write, a bug) is that
        request's result; the others of the batch are sent all the same. on_result, when
        given, is called with each result as soon as it is known (exactly once per request).
        """
        by_origin: dict[str, list[tuple[PushRequest, str]]] = defaultdict(list)
        ordered = list(requests)
        results = _Results(on_result)
        for request in ordered:
            try:
                parts = urlsplit(request.endpoint)
                origin = f"{parts.scheme}://{parts.netloc}"
            except Exception as exc:
                log.error("push request for delivery %s raised", request.key, exc_info=exc)
                results[request.key] = _raised(request.key, exc)
                continue
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            by_origin[origin].append((request, target))

        async def run_origin(origin: str, batch: list[tuple[PushRequest, str]]) -> None:
            try:
                # Once per origin and batch: the allow list may have changed since subscribe
                # time, and an IP literal never goes through the resolver.
                self._check_origin(origin)
                authorization = self.signer.authorization(origin)
                pool = self._client.pool(origin)
            except EndpointRefused as exc:
                for request, _target in batch:
                    results[request.key] = PushResult(
                        request.key, Outcome.REFUSED, error=f"endpoint {exc}"
                    )
                return
            except Exception as exc:
                log.error(
                    "preparing %d push requests to %s raised", len(batch), origin, exc_info=exc
                )
                for request, _target in batch:
                    results[request.key] = _raised(request.key, exc)
                return
            gate = asyncio.Semaphore(self.concurrency)

            async def one(request: PushRequest, target: str) -> None:
                async with gate:
                    try:
                        result = await self._send_one(pool, request, target, authorization)
                    except Exception as exc:
                        log.error("push request for delivery %s raised", request.key, exc_info=exc)
                        result = _raised(request.key, exc)
                    results[request.key] = result

            await asyncio.gather(*(one(r, t) for r, t in batch))

        await asyncio.gather(*(run_origin(o, b) for o, b in by_origin.items()))
        return [results[r.key] for r in ordered]

    async def _send_one(
        self, pool: Pool, request: PushRequest, target: str, authorization: str
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
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                response = await pool.post(target, headers, body)
        except EndpointRefused as exc:
            return PushResult(request.key, Outcome.REFUSED, error=f"endpoint {exc}")
        except InvalidRequest as exc:
            # The endpoint got past validation (stored before it was this strict) or a header
            # is wrong: sending it again would fail the same way.
            return PushResult(request.key, Outcome.ERROR, error=f"invalid request: {exc}")
        except TimeoutError:
            return PushResult(request.key, Outcome.TRANSIENT, error="timeout")
        except (OSError, asyncio.IncompleteReadError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            return PushResult(request.key, Outcome.TRANSIENT, error=error)
        seconds = time.perf_counter() - started
        status = response.status
        outcome = classify(status)
        if outcome is Outcome.SENT:
            return PushResult(request.key, outcome, status, seconds=seconds)
        if 300 <= status < 400:
            error = f"HTTP {status}: redirect not followed"
        else:
            error = f"HTTP {status}: {response.body[:300].decode('utf-8', 'replace')}".strip()
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return PushResult(request.key, outcome, status, error, retry_after, seconds)

    def _check_origin(self, origin: str) -> None:
        self.policy.check_endpoint(origin + "/")
        parts = urlsplit(origin)
        host = parts.hostname or ""
        if is_ip_literal(host):
            port = parts.port or (443 if parts.scheme == "https" else 80)
            check_resolved(self.policy, host, port, [host])


class _Results(dict[int, PushResult]):
    """Results by request key that tell a callback about each one as it is stored."""

    def __init__(self, on_result: Callable[[PushResult], None] | None) -> None:
        super().__init__()
        self._on_result = on_result

    def __setitem__(self, key: int, result: PushResult) -> None:
        super().__setitem__(key, result)
        if self._on_result is not None:
            self._on_result(result)


async def _next(
    arrived: asyncio.Queue[PushResult], task: asyncio.Task, deadline: float | None = None
) -> PushResult | None:
    """Return the next result to arrive; None once the batch is done and all were taken.

    With a deadline (the loop's clock), also None once it has passed.
    """
    loop = asyncio.get_running_loop()
    while True:
        if not arrived.empty():
            return arrived.get_nowait()
        if task.done():
            task.result()  # a bug in send() itself: raise it here rather than wait for ever
            return None
        timeout = None if deadline is None else deadline - loop.time()
        if timeout is not None and timeout <= 0:
            return None
        getter = asyncio.ensure_future(arrived.get())
        await asyncio.wait({getter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()  # a result it did not take yet stays in the queue


async def _next_chunk(
    arrived: asyncio.Queue[PushResult],
    task: asyncio.Task,
    size: int,
    max_wait: float | None = None,
) -> list[PushResult]:
    """Return the next size results as they arrive (fewer at the end; [] once all were taken).

    With max_wait, a chunk also ends that many seconds after its first result came.
    """
    chunk: list[PushResult] = []
    deadline = None
    while len(chunk) < size and (result := await _next(arrived, task, deadline)) is not None:
        chunk.append(result)
        if deadline is None and max_wait is not None:
            deadline = asyncio.get_running_loop().time() + max_wait
    return chunk


def _raised(key: int, exc: Exception) -> PushResult:
    """Return the result of a request whose preparing or sending raised unexpectedly."""
    return PushResult(key, Outcome.ERROR, error=f"{type(exc).__name__}: {exc}")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """Return a new event loop: uvloop's where it is installed, else asyncio's.

    uvloop's transports and callbacks cost less CPU per request than asyncio's pure-Python
    selector loop (bench/delivery.py measures both with --compare-loops).
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class SyncSender:
    """Runs a Sender on a private event loop, for synchronous RQ jobs."""

    def __init__(
        self,
        make_sender: Callable[[], Sender],
        make_loop: Callable[[], asyncio.AbstractEventLoop] = new_event_loop,
    ) -> None:
        self._loop = make_loop()
        self._sender = make_sender()

    def send(self, requests: list[PushRequest]) -> list[PushResult]:
        """Send a batch and wait for every result."""
        started = time.perf_counter()
        results = self._loop.run_until_complete(self._sender.send(requests))
        log.debug("sent %d pushes in %.3fs", len(requests), time.perf_counter() - started)
        return results

    def send_in_chunks(
        self, requests: list[PushRequest], size: int, max_wait: float | None = None
    ) -> Iterator[list[PushResult]]:
        """Send a batch; yield its results in completion order, up to size at a time.

        With max_wait, a chunk is yielded at most that many seconds after its first result:
        an early answer (a 429 and its Retry-After) is not held back behind slow requests.

        The loop runs only while this waits for the next result: whatever the caller does
        with a chunk (write it) happens before more results are taken in, so a process killed
        at any moment has lost at most the chunk it had not written yet.
        """
        if not requests:
            return
        arrived: asyncio.Queue[PushResult] = asyncio.Queue()
        task = self._loop.create_task(self._sender.send(requests, arrived.put_nowait))
        try:
            # One run of the loop per chunk, not per result: entering and leaving the loop
            # costs far more than a result (uvloop sets up its signal socketpair each time).
            while chunk := self._loop.run_until_complete(
                _next_chunk(arrived, task, size, max_wait)
            ):
                yield chunk
            self._loop.run_until_complete(task)
        finally:
            if not task.done():
                task.cancel()
                self._loop.run_until_complete(asyncio.gather(task, return_exceptions=True))

    def close(self) -> None:
        """Close connections and the loop."""
        self._loop.run_until_complete(self._sender.close())
        self._loop.close()
