"""The WebSocket server: one process, one shared Diarizer, many sessions (protocol v1).

HTTP: `GET /` serves the browser page (static/), `GET /v1/status` a small JSON status, and
`/v1/stream` upgrades to a WebSocket session. Access rules (token, Origin, connection limit)
are applied during the opening handshake where possible, the rest at the start message.
"""
from __future__ import annotations

import asyncio
import http
import json
import logging
import secrets
import signal
import socket
import sys
from collections import Counter
from collections.abc import Callable
from math import gcd
from pathlib import Path
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from streamdiar.audio import SAMPLE_RATE, StreamResampler
from streamdiar.server.access import bearer_token, origin_allowed, public_bind_warning, tls_context, tokens_equal
from streamdiar.server.options import ServerOptions
from streamdiar.server.overrides import SessionSettings, apply_counts, apply_settings, session_settings
from streamdiar.server.protocol import (CLOSE_GOING_AWAY, MAX_TEXT_BYTES, PROTOCOL_VERSION, STREAM_PATH,
                                        ProtocolError, StopMessage, error_event, parse_text, ready_event)
from streamdiar.server.scheduler import Scheduler
from streamdiar.server.session import Session

log = logging.getLogger("streamdiar.server")

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_ROUTES = {"/": "index.html", "/index.html": "index.html", "/app.js": "app.js", "/worklet.js": "worklet.js",
                 "/style.css": "style.css"}
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
# the page loads only its own files and talks only to this server ({host}: the request's Host)
PAGE_POLICY = "default-src 'self'; connect-src 'self' ws://{host} wss://{host}; object-src 'none'; base-uri 'none'"
STATUS_PATH = "/v1/status"
HANDSHAKE_SLACK = 16  # connections beyond max_sessions allowed to be in their opening handshake
REJECT_CLOSE_TIMEOUT_S = 2.0
# kernel receive buffer of each connection: audio queued there delays everything behind it
# (a client's pings too) when the engine paces a fast client; 256 KiB is 8 s of 16 kHz pcm_s16le
RECV_BUFFER_BYTES = 1 << 18

# torchaudio's resampler builds one filter per phase (rate / gcd(rate, 16000) of them): 1000 cost
# about 1% of real time, a rate like 47999 Hz (47999 phases) about 40 times real time
MAX_RESAMPLE_PHASES = 1000

# apply_profiles(stream, names): seed a new stream with enrolled speakers before its audio;
# raises KeyError/ValueError naming a profile it does not know
ProfileHook = Callable[[object, list[str]], None]


class DiarizationServer:
    def __init__(self, diarizer, options: ServerOptions | None = None, apply_profiles: ProfileHook | None = None):
        self.diarizer = diarizer
        self.options = options or ServerOptions()
        self.options.limits.check()
        self.apply_profiles = apply_profiles
        self.scheduler = Scheduler(diarizer, self.options.limits)
        self.sessions: dict[str, Session] = {}
        self.port: int | None = None
        self._static = {path: (STATIC_DIR / name).read_bytes() for path, name in STATIC_ROUTES.items()}
        self._tls = tls_context(self.options.access)
        self._server = None
        self._scheduler_task: asyncio.Task | None = None
        self._connections = 0
        self._handshaking: set[ServerConnection] = set()  # connected, no start message yet
        self._starting = 0
        self._no_connections = asyncio.Event()
        self._closing = False
        self.outcomes: Counter[str] = Counter()  # how sessions ended: done, overloaded, vanished, ...

    # -- life cycle -------------------------------------------------------------------------------
    async def start(self) -> "DiarizationServer":
        opts, limits = self.options, self.options.limits
        warning = public_bind_warning(opts.host, opts.access.token)
        if warning:
            log.warning(warning)
        self._scheduler_task = asyncio.create_task(self.scheduler.run(), name="streamdiar-rounds")
        self._server = await serve(
            self._handle, opts.host, opts.port, ssl=self._tls, process_request=self._process_request,
            server_header=f"streamdiar (protocol {PROTOCOL_VERSION})",
            # frames up to twice the limit reach the session, which answers with a clear error;
            # beyond that websockets closes with 1009 before reading them
            max_size=max(2 * limits.max_frame_bytes, 2 * MAX_TEXT_BYTES), max_queue=2,
            write_limit=limits.send_buffer_bytes, open_timeout=limits.handshake_timeout_s,
            # no keepalive pings: a client paced by flow control answers them only after the audio
            # queued ahead; the idle timeout finds dead clients instead
            ping_interval=None, close_timeout=REJECT_CLOSE_TIMEOUT_S,
            # PCM does not compress, and a deflate context per connection costs memory and CPU
            compression=None,
        )
        for listener in self._server.sockets:  # accepted connections inherit it
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        self._no_connections.set()
        log.info("serving protocol v%d on %s (page: %s)", PROTOCOL_VERSION, self.url, self.page_url)
        return self

    @property
    def url(self) -> str:
        scheme = "wss" if self._tls else "ws"
        return f"{scheme}://{self._display_host()}:{self.port}{STREAM_PATH}"

    @property
    def page_url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self._display_host()}:{self.port}/"

    def _display_host(self) -> str:
        host = self.options.host
        return f"[{host}]" if ":" in host else host

    async def shutdown(self) -> None:
        """Stop accepting; open sessions get their final segments, `done` and a 1001 close."""
        if self._closing or self._server is None:
            return
        self._closing = True
        self._server.close(close_connections=False)
        for session in list(self.sessions.values()):
            session.shutdown()
        for ws in list(self._handshaking):
            asyncio.create_task(ws.close(CLOSE_GOING_AWAY, "server shutdown"))
        try:
            await asyncio.wait_for(self._no_connections.wait(), self.options.shutdown_timeout_s)
        except TimeoutError:
            log.warning("shutdown: %d connection(s) did not finish in time; closing them", self._connections)
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        await self.scheduler.close()
        if self._scheduler_task is not None:
            self._scheduler_task.cancel()

    async def __aenter__(self) -> "DiarizationServer":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.shutdown()

    def status(self) -> dict:
        capacity = self.scheduler.capacity()
        return {"protocol": PROTOCOL_VERSION, "sessions": len(self.sessions),
                "max_sessions": self.options.limits.max_sessions, "rounds": self.scheduler.rounds,
                "shed": self.scheduler.shed_total, "strained": self.scheduler.strained(),
                "capacity": None if capacity is None else round(capacity, 2),
                "longest_round_s": round(self.scheduler.longest_round_s, 3), "ended": dict(self.outcomes)}

    # -- HTTP and the opening handshake -----------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path in self._static:
            response = self._respond(connection, http.HTTPStatus.OK, self._static[path],
                                     CONTENT_TYPES[Path(STATIC_ROUTES[path]).suffix])
            host = request.headers.get("Host", "").strip()
            if host and all(c.isalnum() or c in ".-:[]" for c in host):  # never echo odd characters
                response.headers["Content-Security-Policy"] = PAGE_POLICY.format(host=host)
            return response
        if path == STATUS_PATH:
            return self._respond(connection, http.HTTPStatus.OK, json.dumps(self.status()).encode(),
                                 "application/json")
        if path != STREAM_PATH:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        access = self.options.access
        if not origin_allowed(request.headers.get("Origin"), request.headers.get("Host"), access):
            return connection.respond(http.HTTPStatus.FORBIDDEN, "origin not allowed\n")
        header_token = bearer_token(request.headers.get("Authorization"))
        if access.token is not None and header_token is not None and not tokens_equal(header_token, access.token):
            return connection.respond(http.HTTPStatus.UNAUTHORIZED, "wrong token\n")
        if self._closing:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "server shutting down\n")
        if self._connections >= self.options.limits.max_sessions + HANDSHAKE_SLACK:
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "too many connections\n")
        return None

    @staticmethod
    def _respond(connection: ServerConnection, status: http.HTTPStatus, body: bytes, content_type: str) -> Response:
        response = connection.respond(status, "")
        headers = Headers([(k, v) for k, v in response.headers.raw_items()
                           if k.lower() not in ("content-type", "content-length")])
        headers["Content-Type"] = content_type
        headers["Content-Length"] = str(len(body))
        headers["Cache-Control"] = "no-store"
        headers["X-Content-Type-Options"] = "nosniff"
        return Response(status.value, status.phrase, headers, body)

    # -- sessions ---------------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        self._connections += 1
        self._no_connections.clear()
        try:
            await self._serve_connection(ws)
        except Exception:  # noqa: BLE001 - a bug must cost one connection, never the server
            log.exception("connection handler failed")
        finally:
            self._connections -= 1
            if self._connections == 0:
                self._no_connections.set()

    async def _serve_connection(self, ws: ServerConnection) -> None:
        self._limit_send_buffer(ws)
        limits = self.options.limits
        self._handshaking.add(ws)
        try:
            async with asyncio.timeout(limits.handshake_timeout_s):
                message = await ws.recv()
        except TimeoutError:
            await self._reject(ws, ProtocolError("timeout", f"no start message within {limits.handshake_timeout_s:g} s"))
            return
        except websockets.ConnectionClosed:
            return
        finally:
            self._handshaking.discard(ws)
        self._starting += 1
        try:
            session_id = secrets.token_hex(8)
            start, settings = self._admit(ws, message)
            stream = await self.scheduler.call(self._open_stream, session_id, settings, list(start.profiles))
            resampler = StreamResampler(resampling_rate(start.audio.sample_rate))
        except ProtocolError as exc:
            await self._reject(ws, exc)
            return
        finally:
            self._starting -= 1
        if self._closing:
            await self._reject(ws, ProtocolError("overloaded", "server shutting down"), CLOSE_GOING_AWAY)
            return
        session = Session(session_id, ws, start, stream, resampler, limits, self.scheduler, self._count_outcome)
        session.outbox.push_last(ready_event(session_id))
        self.sessions[session_id] = session
        self.scheduler.add(session)
        log.info("session %s: started (%d Hz, %s, %d channel(s)); %d open", session_id, start.audio.sample_rate,
                 start.audio.encoding, start.audio.channels, len(self.sessions))
        try:
            await session.run()
        finally:
            self.sessions.pop(session_id, None)
            log.info("session %s: ended (%s, %.1f s of audio)", session_id, session.outcome,
                     session.received / start.audio.sample_rate)

    def _count_outcome(self, outcome: str) -> None:
        self.outcomes[outcome] += 1

    def _admit(self, ws: ServerConnection, message: str | bytes):
        """Validate the start message against the protocol and this server's policy."""
        if isinstance(message, bytes):
            raise ProtocolError("bad_request", "binary frame before start")
        start = parse_text(message)
        if isinstance(start, StopMessage):
            raise ProtocolError("bad_request", "stop before start")
        token = self.options.access.token
        if token is not None and bearer_token(ws.request.headers.get("Authorization")) is None:
            if start.token is None:
                raise ProtocolError("unauthorized", "this server needs a token (start.token or Authorization: Bearer)")
            if not tokens_equal(start.token, token):
                raise ProtocolError("unauthorized", "wrong token")
        settings = session_settings(self.diarizer.config, start.config, self.options.allowed_config)
        if start.profiles and self.apply_profiles is None:
            raise ProtocolError("unsupported", "this server has no speaker profiles")
        limits = self.options.limits
        if len(self.sessions) + self._starting > limits.max_sessions:
            raise ProtocolError("overloaded", f"the server holds its limit of {limits.max_sessions} sessions")
        if self._closing:
            raise ProtocolError("overloaded", "server shutting down")
        if self.scheduler.strained():
            raise ProtocolError("overloaded", "the server is at capacity; try again later")
        return start, settings

    def _open_stream(self, session_id: str, settings: SessionSettings | None, profiles: list[str]):
        """Engine thread: a new stream with the session's settings and enrolled speakers."""
        stream = self.diarizer.open_stream(session_id)
        if settings is not None:
            apply_settings(stream, settings)
        if profiles:
            try:
                self.apply_profiles(stream, profiles)
            except (KeyError, ValueError) as exc:
                raise ProtocolError("bad_request", f"profiles: {exc}") from None
        if settings is not None and settings.has_counts:
            apply_counts(stream, settings)
        return stream

    async def _reject(self, ws: ServerConnection, exc: ProtocolError, close_code: int | None = None) -> None:
        """Error event and close for a connection that never became a session."""
        log.info("connection refused: %s: %s", exc.code, exc.message)
        self.outcomes[f"refused:{exc.code}"] += 1
        drain = asyncio.create_task(discard_messages(ws))  # so the client's close frame is read
        try:
            async with asyncio.timeout(REJECT_CLOSE_TIMEOUT_S):
                await ws.send(error_event(exc.code, exc.message))
                await ws.close(close_code or exc.close_code, exc.code)
        except (TimeoutError, websockets.ConnectionClosed):
            if ws.transport is not None:
                ws.transport.abort()
        finally:
            drain.cancel()

    def _limit_send_buffer(self, ws: ServerConnection) -> None:
        """A small kernel send buffer makes a client that stops reading visible to the outbox
        bound quickly, instead of after megabytes of queued events."""
        sock = ws.transport.get_extra_info("socket") if ws.transport is not None else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.options.limits.send_buffer_bytes)


async def discard_messages(ws: ServerConnection) -> None:
    try:
        async for _ in ws:
            pass
    except websockets.ConnectionClosed:
        pass


def resampling_rate(rate: int) -> int:
    """The rate a session's audio is resampled from: its own, unless that would cost more than
    MAX_RESAMPLE_PHASES filters; then the nearest rate that does not (at most 0.1% away, so label
    times stretch by at most that much; `done` still counts the client's own samples)."""
    def phases(candidate: int) -> int:
        return candidate // gcd(candidate, SAMPLE_RATE)

    distance = 0
    while True:
        for candidate in (rate - distance, rate + distance):
            if phases(candidate) <= MAX_RESAMPLE_PHASES:
                return candidate
        distance += 1


async def serve_until_signalled(server: DiarizationServer) -> None:
    """Run until SIGINT or SIGTERM, then shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"streamdiar: serving {server.url} (page: {server.page_url}); Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        await stop.wait()
        log.info("shutting down: finishing %d session(s)", len(server.sessions))
    finally:
        await server.shutdown()


def profile_hook(folder: str) -> ProfileHook:
    """start.profiles -> the enrolled speakers of that name in `folder` (a --profiles value)."""
    from streamdiar.speakers import apply_to_stream
    from streamdiar.speakers.options import profiles_folder

    store = profiles_folder(folder)

    def apply(stream, names: list[str]) -> None:
        known = set(store.names())
        unknown = [name for name in names if name not in known]
        if unknown:
            raise KeyError(f"no enrolled speaker named {unknown[0]!r}")
        apply_to_stream(stream, store.load_all(names))

    return apply
