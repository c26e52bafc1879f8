"""A server running on its own event loop in a background thread: for tests, benchmarks and
programs that embed the server next to synchronous code.

    with BackgroundServer(diarizer, ServerOptions(port=0)) as server:
        print(server.url)
"""
from __future__ import annotations

import asyncio
import threading

from streamdiar.server.options import ServerOptions
from streamdiar.server.server import DiarizationServer, ProfileHook

START_TIMEOUT_S = 30.0


class BackgroundServer:
    def __init__(self, diarizer, options: ServerOptions | None = None, apply_profiles: ProfileHook | None = None):
        self._args = (diarizer, options or ServerOptions(port=0), apply_profiles)
        self.server: DiarizationServer | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="streamdiar-server", daemon=True)

    def start(self) -> "BackgroundServer":
        self._thread.start()

        async def start() -> DiarizationServer:
            return await DiarizationServer(*self._args).start()

        self.server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(START_TIMEOUT_S)
        return self

    def call(self, fn, *args):
        """Run a plain function on the server's loop (its objects are not thread-safe) and return its result."""
        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(START_TIMEOUT_S)

    def stop(self, timeout_s: float | None = None) -> None:
        if self.server is not None:
            future = asyncio.run_coroutine_threadsafe(self.server.shutdown(), self._loop)
            future.result(timeout_s or self.server.options.shutdown_timeout_s + START_TIMEOUT_S)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT_S)
        self._loop.close()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def page_url(self) -> str:
        return self.server.page_url

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
