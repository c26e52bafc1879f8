"""What a server operator can set: limits (each with a safe default) and access control."""
from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7007
# the "config" keys a client may send in its start message unless the operator says otherwise
DEFAULT_ALLOWED_CONFIG = frozenset({"tracker", "labels", "num_speakers", "min_speakers", "max_speakers"})


@dataclass(frozen=True)
class Limits:
    max_sessions: int = 64
    max_frame_bytes: int = 1 << 20  # 32 s of 16 kHz mono pcm_s16le
    handshake_timeout_s: float = 10.0  # connect -> start message
    idle_timeout_s: float = 30.0  # longest silence from a client between messages
    max_session_s: float = 4 * 3600.0  # wall-clock length of one session
    max_backlog_s: float = 5.0  # audio buffered per session before the server stops reading it
    max_pending_events: int = 256  # events queued per session before its client counts as not reading
    max_lag_s: float = 5.0  # how far a stream may fall behind real time before the server sheds load
    send_buffer_bytes: int = 1 << 16  # kernel and websockets write buffers per connection

    def check(self) -> None:
        for name in ("max_sessions", "max_frame_bytes", "max_pending_events"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1")
        if self.send_buffer_bytes < 4096:
            raise ValueError("send-buffer-bytes must be at least 4096")
        for name in ("handshake_timeout_s", "idle_timeout_s", "max_session_s", "max_backlog_s", "max_lag_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name.replace('_', '-')} must be > 0")


@dataclass(frozen=True)
class Access:
    token: str | None = None
    # browser origins allowed besides the server's own pages; "*" allows any
    allowed_origins: tuple[str, ...] = ()
    certfile: str | None = None
    keyfile: str | None = None

    @property
    def tls(self) -> bool:
        return self.certfile is not None


@dataclass(frozen=True)
class ServerOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    limits: Limits = field(default_factory=Limits)
    access: Access = field(default_factory=Access)
    allowed_config: frozenset[str] = DEFAULT_ALLOWED_CONFIG
    shutdown_timeout_s: float = 15.0  # SIGTERM: time sessions get to receive their final segments
