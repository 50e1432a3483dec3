"""A strict local Web Push service for tests, also speaking Firefox's push WebSocket protocol."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import WSMsgType, web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_BODY = 4096
URGENCIES = frozenset({"very-low", "low", "normal", "high"})
TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
TTL_RE = re.compile(r"^[0-9]+$")
# RFC 8292: a token may not be valid for more than 24 hours.
MAX_JWT_LIFETIME = 24 * 60 * 60


def b64url_encode(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raise ValueError when malformed."""
    text = text.strip().rstrip("=")
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc


@dataclass(frozen=True)
class Reply:
    """A scripted response the push service returns instead of its normal 201."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    # A slow push service: answer after this many seconds. A sender that left meanwhile (a
    # killed worker) heard nothing, so nothing is recorded for it.
    delay: float = 0


@dataclass
class TestSubscription:
    """A browser-side subscription: endpoint plus the receiver's keys."""

    # Keep pytest from collecting this as a test class despite its name.
    __test__ = False

    endpoint: str
    p256dh: str
    auth: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    def as_json(self, **extra: Any) -> dict[str, Any]:
        """Return the PushSubscription.toJSON() shape, plus any extra keys."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": self.auth},
            **extra,
        }


@dataclass
class ReceivedPush:
    """One POST that reached a push endpoint, accepted or refused."""

    endpoint: str
    status: int
    ttl: int | None
    urgency: str | None
    topic: str | None
    content_encoding: str | None
    headers: dict[str, str]
    jwt_claims: dict[str, Any] | None
    vapid_key: str | None
    plaintext: bytes | None
    error: str | None
    body: bytes = b""
    # Firefox mode: the notification version forwarded to the browser.
    version: str | None = None
    received_at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        """The decrypted payload parsed as JSON."""
        assert self.plaintext is not None, f"push was not decrypted: {self.error}"
        return json.loads(self.plaintext)

    @property
    def notification(self) -> dict[str, Any]:
        """The declarative message (`web_push: 8030`) read as the inbox's flat fields.

        id, kind, created_at, url (the page), data and tickle from its `data`; title, body,
        navigate, tag, icon, lang from its `notification`; app_badge from the message.
        """
        message = self.json
        assert message.get("web_push") == 8030, f"not a declarative message: {message}"
        shown = dict(message["notification"])
        flat = {**shown.pop("data"), **shown}
        if "app_badge" in message:
            flat["app_badge"] = message["app_badge"]
        return flat

    def summary(self) -> str:
        """A one-line description for assertion messages."""
        text = None
        if self.plaintext is not None:
            text = self.plaintext[:120].decode("utf-8", "replace")
        return (
            f"{self.status} {self.endpoint} ttl={self.ttl} urgency={self.urgency} "
            f"topic={self.topic} error={self.error!r} plaintext={text!r}"
        )


class Refused(Exception):
    """A push the service refuses, with the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class _Channel:
    """A Firefox push registration made over the WebSocket."""

    channel_id: str
    uaid: str
    key: bytes | None


class PushService:
    """A push service on 127.0.0.1 in a background thread, with HTTP and Firefox WebSocket sides."""

    def __init__(self, *, expected_vapid_key: str | None = None) -> None:
        self.expected_vapid_key = expected_vapid_key
        self._expected_key_raw = b64url_decode(expected_vapid_key) if expected_vapid_key else None
        # One condition guards all state: handlers run on the loop thread, tests on theirs.
        self._cond = threading.Condition()
        self._received: list[ReceivedPush] = []
        self._acks: list[dict[str, Any]] = []
        self._subscriptions: dict[str, TestSubscription] = {}
        self._scripts: dict[str, deque[Reply]] = {}
        # Answers for endpoints without a script: endpoint -> a Reply, or None for a 201.
        # bench/chaos.py answers at random through it.
        self.chaos: Callable[[str], Reply | None] | None = None
        self._channels: dict[str, _Channel] = {}
        self._sockets: dict[str, web.WebSocketResponse] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._hellos: list[dict[str, Any]] = []
        # change_uaid(): the next hello gets a new uaid; (old, new) pairs once it did.
        self._new_uaid_next = False
        self.uaid_changes: list[tuple[str | None, str]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> PushService:
        """Start serving on a free port; return self."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to the starting thread below
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="pushservice", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("push service did not start within 10 s")
        if failure:
            raise RuntimeError("push service failed to start") from failure[0]
        return self

    async def _serve(self) -> None:
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_get("/", self._websocket)
        app.router.add_post("/push/{token}", self._push)
        app.router.add_post("/wpush/{channel_id}", self._wpush)
        app.on_shutdown.append(self._close_sockets)
        # Short shutdown: tests must not hang on a browser that keeps its socket open.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _close_sockets(self, _app: web.Application) -> None:
        with self._cond:
            sockets = list(self._sockets.values())
        for ws in sockets:
            await ws.close()

    def stop(self) -> None:
        """Stop the server and its thread."""
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = self._runner = None

    def __enter__(self) -> PushService:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """The service's origin, which is also the VAPID audience it demands."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def host_port(self) -> str:
        """127.0.0.1:PORT, as an allow-list entry for the app's SSRF guard."""
        return f"127.0.0.1:{self.port}"

    @property
    def websocket_url(self) -> str:
        """The URL for Firefox's dom.push.serverURL pref."""
        return f"ws://127.0.0.1:{self.port}/"

    # -- test-side API -----------------------------------------------------------------------

    def new_subscription(self) -> TestSubscription:
        """Create a subscription with fresh receiver keys and a random endpoint."""
        private_key = ec.generate_private_key(ec.SECP256R1())
        public = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        auth_secret = os.urandom(16)
        token = secrets.token_urlsafe(24)
        sub = TestSubscription(
            endpoint=f"{self.origin}/push/{token}",
            p256dh=b64url_encode(public),
            auth=b64url_encode(auth_secret),
            private_key=private_key,
            auth_secret=auth_secret,
        )
        with self._cond:
            self._subscriptions[token] = sub
        return sub

    def respond(self, endpoint: str, *responses: Reply) -> None:
        """Queue responses for the next valid pushes to endpoint; after them, 201 again."""
        with self._cond:
            self._scripts.setdefault(endpoint, deque()).extend(responses)

    def forget(self, endpoint: str) -> None:
        """Make an endpoint unknown, so pushes to it get 404 like an expired subscription."""
        token = endpoint.rsplit("/", 1)[-1]
        with self._cond:
            self._subscriptions.pop(token, None)
            self._channels.pop(token, None)

    @property
    def received(self) -> list[ReceivedPush]:
        """A snapshot of every push received so far, in order."""
        with self._cond:
            return list(self._received)

    def pushes_for(self, endpoint: str) -> list[ReceivedPush]:
        """Pushes received for one endpoint, in order."""
        with self._cond:
            return [p for p in self._received if p.endpoint == endpoint]

    def wait_for(
        self, predicate: Callable[[list[ReceivedPush]], bool], timeout: float = 10
    ) -> list[ReceivedPush]:
        """Block until predicate(received) is true; return the snapshot or fail with a dump."""
        with self._cond:
            ok = self._cond.wait_for(lambda: predicate(list(self._received)), timeout)
            snapshot = list(self._received)
        if not ok:
            dump = "\n".join(f"  {p.summary()}" for p in snapshot) or "  (nothing received)"
            raise AssertionError(
                f"push service: condition not met within {timeout} s; received:\n{dump}"
            )
        return snapshot

    def wait_for_count(self, count: int, timeout: float = 10) -> list[ReceivedPush]:
        """Block until at least count pushes arrived."""
        return self.wait_for(lambda pushes: len(pushes) >= count, timeout)

    def clear(self) -> None:
        """Forget received pushes, acks and scripted replies (subscriptions stay)."""
        with self._cond:
            self._received.clear()
            self._acks.clear()
            self._scripts.clear()

    # -- Firefox side ------------------------------------------------------------------------

    @property
    def acks(self) -> list[dict[str, Any]]:
        """Every ack/nack update Firefox sent, each with its messageType."""
        with self._cond:
            return list(self._acks)

    @property
    def channels(self) -> list[str]:
        """Channel ids Firefox currently has registered."""
        with self._cond:
            return list(self._channels)

    @property
    def firefox_connected(self) -> bool:
        """Whether a browser has said hello on an open WebSocket."""
        with self._cond:
            return bool(self._sockets)

    def wait_for_ack(self, version: str, timeout: float = 10) -> dict[str, Any]:
        """Block until Firefox acks (or nacks) a notification version; return that update."""

        def find() -> dict[str, Any] | None:
            return next((a for a in self._acks if a.get("version") == version), None)

        with self._cond:
            ok = self._cond.wait_for(lambda: find() is not None, timeout)
            found, acks = find(), list(self._acks)
        if not ok or found is None:
            raise AssertionError(f"no ack for version {version} within {timeout} s; acks: {acks}")
        return found

    def change_uaid(self) -> None:
        """Drop the browsers' sockets and answer the next hello with a new uaid.

        That is how autopush tells a browser its registrations are gone: Firefox drops its
        subscriptions and fires `pushsubscriptionchange` in each service worker.
        """
        assert self._loop is not None
        with self._cond:
            self._new_uaid_next = True
            sockets = list(self._sockets.values())
        for ws in sockets:
            asyncio.run_coroutine_threadsafe(ws.close(), self._loop).result(5)

    def wait_for_firefox(self, timeout: float = 30) -> None:
        """Block until a browser is connected to the WebSocket."""
        with self._cond:
            ok = self._cond.wait_for(lambda: bool(self._sockets), timeout)
            hellos = list(self._hellos)
        if not ok:
            raise AssertionError(f"Firefox did not connect within {timeout} s; hellos: {hellos}")

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=("push-notification",), autoping=True)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="expected a push-notification WebSocket")
        await ws.prepare(request)
        uaid: str | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    await ws.close(code=4000, message=b"bad json")
                    break
                if not isinstance(data, dict):
                    continue
                kind = str(data.get("messageType", "")).lower()
                if not kind:
                    # Firefox's keep-alive ping is an empty object, answered in kind.
                    await ws.send_str("{}")
                elif kind == "hello":
                    uaid = await self._hello(ws, data)
                elif uaid is None:
                    await ws.close(code=4001, message=b"hello first")
                    break
                elif kind == "register":
                    await self._register(ws, uaid, data)
                elif kind == "unregister":
                    channel_id = str(data.get("channelID", ""))
                    with self._cond:
                        self._channels.pop(channel_id, None)
                        self._cond.notify_all()
                    await ws.send_json(
                        {"messageType": "unregister", "channelID": channel_id, "status": 200}
                    )
                elif kind in ("ack", "nack"):
                    self._record_acks(kind, data)
                # Anything else (broadcast_subscribe, ...) needs no answer here.
        finally:
            with self._cond:
                if uaid is not None and self._sockets.get(uaid) is ws:
                    del self._sockets[uaid]
                self._cond.notify_all()
        return ws

    async def _hello(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> str:
        # Echo Firefox's uaid: answering a different one makes it drop its subscriptions.
        sent = data.get("uaid")
        with self._cond:
            renew, self._new_uaid_next = self._new_uaid_next, False
        uaid = str(sent) if sent and not renew else uuid.uuid4().hex
        if renew:
            with self._cond:
                self.uaid_changes.append((str(sent) if sent else None, uaid))
                # The old uaid's registrations are gone, as on a real service: 410 from now.
                for channel_id in [c for c, ch in self._channels.items() if ch.uaid == sent]:
                    del self._channels[channel_id]
        await ws.send_json(
            {"messageType": "hello", "uaid": uaid, "status": 200, "use_webpush": True}
        )
        with self._cond:
            self._hellos.append(data)
            self._sockets[uaid] = ws
            pending = self._pending.pop(uaid, [])
            self._cond.notify_all()
        for message in pending:
            await ws.send_json(message)
        return uaid

    async def _register(self, ws: web.WebSocketResponse, uaid: str, data: dict[str, Any]) -> None:
        channel_id = str(data.get("channelID", ""))
        key_text = data.get("key")
        reply: dict[str, Any] = {"messageType": "register", "channelID": channel_id}
        try:
            key = b64url_decode(key_text) if key_text else None
        except ValueError:
            reply["status"] = 400
        else:
            with self._cond:
                self._channels[channel_id] = _Channel(channel_id, uaid, key)
                self._cond.notify_all()
            reply["status"] = 200
            reply["pushEndpoint"] = f"{self.origin}/wpush/{channel_id}"
        await ws.send_json(reply)

    def _record_acks(self, kind: str, data: dict[str, Any]) -> None:
        updates = data.get("updates")
        if not isinstance(updates, list):
            # A nack carries one update inline instead of a list.
            updates = [{k: v for k, v in data.items() if k != "messageType"}]
        with self._cond:
            for update in updates:
                if isinstance(update, dict):
                    self._acks.append({"messageType": kind, **update})
            self._cond.notify_all()

    # -- HTTP side ---------------------------------------------------------------------------

    async def _push(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        with self._cond:
            sub = self._subscriptions.get(token)
        return await self._handle(request, sub=sub, channel=None, known=sub is not None)

    async def _wpush(self, request: web.Request) -> web.Response:
        with self._cond:
            channel = self._channels.get(request.match_info["channel_id"])
        return await self._handle(request, sub=None, channel=channel, known=channel is not None)

    async def _handle(
        self,
        request: web.Request,
        *,
        sub: TestSubscription | None,
        channel: _Channel | None,
        known: bool,
    ) -> web.Response:
        endpoint = f"{self.origin}{request.path}"
        body = await request.read()
        headers = dict(request.headers)
        push = ReceivedPush(
            endpoint=endpoint,
            status=0,
            ttl=None,
            urgency=request.headers.get("Urgency"),
            topic=request.headers.get("Topic"),
            content_encoding=request.headers.get("Content-Encoding"),
            headers=headers,
            jwt_claims=None,
            vapid_key=None,
            plaintext=None,
            error=None,
            body=body,
        )
        try:
            if not known:
                raise Refused(404, "unknown endpoint (subscription expired or never existed)")
            self._check_headers(request, body, push)
            key_raw = self._check_vapid(request, push)
            if channel is not None and channel.key is not None and channel.key != key_raw:
                raise Refused(403, "VAPID key k does not match the subscription's server key")
            if sub is not None and body:
                try:
                    push.plaintext = http_ece.decrypt(
                        body,
                        private_key=sub.private_key,
                        auth_secret=sub.auth_secret,
                        version="aes128gcm",
                    )
                except Exception as exc:  # any decryption failure is the sender's fault
                    raise Refused(400, f"decryption failed: {type(exc).__name__}: {exc}") from exc
            elif sub is not None:
                push.plaintext = b""
        except Refused as refused:
            push.status = refused.status
            push.error = refused.reason
            self._record(push)
            return web.json_response(
                {"code": refused.status, "error": refused.reason, "message": refused.reason},
                status=refused.status,
            )

        with self._cond:
            script = self._scripts.get(endpoint)
            reply = script.popleft() if script else None
        if reply is None and self.chaos is not None:
            reply = self.chaos(endpoint)
        if reply is not None:
            if reply.delay:
                await asyncio.sleep(reply.delay)  # the slow service, not a wait in a test
                if request.transport is None or request.transport.is_closing():
                    return web.Response(status=reply.status)
            push.status = reply.status
            self._record(push)
            return web.Response(status=reply.status, headers=reply.headers, text=reply.body)

        if channel is not None:
            push.version = uuid.uuid4().hex
            await self._forward(channel, push.version, body)
        push.status = 201
        self._record(push)
        location = f"{self.origin}/m/{uuid.uuid4().hex}"
        return web.Response(status=201, headers={"Location": location, "TTL": str(push.ttl)})

    def _record(self, push: ReceivedPush) -> None:
        with self._cond:
            self._received.append(push)
            self._cond.notify_all()

    async def _forward(self, channel: _Channel, version: str, body: bytes) -> None:
        message: dict[str, Any] = {
            "messageType": "notification",
            "channelID": channel.channel_id,
            "version": version,
        }
        if body:
            message["data"] = b64url_encode(body)
            message["headers"] = {"encoding": "aes128gcm"}
        with self._cond:
            ws = self._sockets.get(channel.uaid)
            if ws is None or ws.closed:
                # Browser offline: deliver when it says hello again, as a real service would.
                self._pending.setdefault(channel.uaid, []).append(message)
                return
        await ws.send_json(message)

    @staticmethod
    def _check_headers(request: web.Request, body: bytes, push: ReceivedPush) -> None:
        ttl = request.headers.get("TTL")
        if ttl is None:
            raise Refused(400, "missing TTL header")
        if not TTL_RE.fullmatch(ttl.strip()):
            raise Refused(400, f"invalid TTL header {ttl!r}")
        push.ttl = int(ttl)
        encoding = request.headers.get("Content-Encoding")
        if body and encoding is None:
            raise Refused(400, "missing Content-Encoding for a payload")
        if body and encoding != "aes128gcm":
            raise Refused(415, f"unsupported Content-Encoding {encoding!r}, need aes128gcm")
        urgency = request.headers.get("Urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise Refused(400, f"invalid Urgency {urgency!r}")
        topic = request.headers.get("Topic")
        if topic is not None and not TOPIC_RE.fullmatch(topic):
            raise Refused(400, f"invalid Topic {topic!r}: ≤32 URL-safe base64 characters")
        if len(body) > MAX_BODY:
            raise Refused(413, f"payload of {len(body)} bytes exceeds {MAX_BODY}")

    def _check_vapid(self, request: web.Request, push: ReceivedPush) -> bytes:
        """Verify the RFC 8292 Authorization header; return the raw public key."""
        auth = request.headers.get("Authorization")
        if not auth:
            raise Refused(401, "missing Authorization header (VAPID required)")
        scheme, _, params = auth.strip().partition(" ")
        if scheme.lower() != "vapid":
            raise Refused(401, f"Authorization scheme {scheme!r} is not vapid")
        parts: dict[str, str] = {}
        for item in params.split(","):
            name, sep, value = item.strip().partition("=")
            if sep:
                parts[name.strip().lower()] = value.strip()
        token, key_text = parts.get("t"), parts.get("k")
        if not token or not key_text:
            raise Refused(401, "Authorization must carry t=<JWT> and k=<public key>")
        push.vapid_key = key_text
        try:
            key_raw = b64url_decode(key_text)
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key_raw)
        except ValueError as exc:
            raise Refused(401, f"k is not a P-256 public key: {exc}") from exc
        if len(key_raw) != 65:
            raise Refused(401, "k must be an uncompressed 65-byte P-256 point")

        segments = token.split(".")
        if len(segments) != 3:
            raise Refused(401, "JWT must have three segments")
        try:
            header = json.loads(b64url_decode(segments[0]))
            claims = json.loads(b64url_decode(segments[1]))
            signature = b64url_decode(segments[2])
        except ValueError as exc:
            raise Refused(401, f"JWT is malformed: {exc}") from exc
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise Refused(401, "JWT header and claims must be objects")
        push.jwt_claims = claims
        if header.get("alg") != "ES256":
            raise Refused(401, f"JWT alg must be ES256, got {header.get('alg')!r}")
        if len(signature) != 64:
            raise Refused(401, "JWT signature must be raw r||s (64 bytes)")
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        signing_input = f"{segments[0]}.{segments[1]}".encode("ascii")
        try:
            public_key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature as exc:
            raise Refused(401, "JWT signature does not verify with k") from exc

        if claims.get("aud") != self.origin:
            raise Refused(401, f"JWT aud {claims.get('aud')!r} is not {self.origin!r}")
        exp = claims.get("exp")
        now = time.time()
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise Refused(401, f"JWT exp must be an integer, got {exp!r}")
        if exp <= now:
            raise Refused(401, f"JWT expired {now - exp:.0f} s ago")
        if exp > now + MAX_JWT_LIFETIME:
            raise Refused(401, f"JWT exp is {exp - now:.0f} s ahead, more than 24 h")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.startswith(("mailto:", "https:")):
            raise Refused(401, f"JWT sub {sub!r} must be a mailto: or https: URL")
        if self._expected_key_raw is not None and key_raw != self._expected_key_raw:
            raise Refused(403, "VAPID key does not match the expected application server key")
        return key_raw
