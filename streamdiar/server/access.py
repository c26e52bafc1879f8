"""Who may connect: token comparison, Origin policy, TLS context, the public-bind check."""
from __future__ import annotations

import hmac
import ipaddress
import ssl

from streamdiar.server.options import Access


class AccessError(ValueError):
    """A server setting that cannot work (for example an unreadable certificate)."""


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing reveals nothing about the token."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None if the header is absent."""
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def origin_allowed(origin: str | None, host_header: str | None, access: Access) -> bool:
    """Browsers send Origin; programs usually do not. Pages served by this server itself
    (same scheme, host and port) are always allowed, other origins only when listed."""
    if origin is None or "*" in access.allowed_origins:
        return True
    if origin in access.allowed_origins:
        return True
    scheme = "https" if access.tls else "http"
    return host_header is not None and origin.lower() == f"{scheme}://{host_header}".lower()


def is_public(host: str) -> bool:
    """True unless the address only accepts connections from this machine."""
    if host in ("localhost", "ip6-localhost"):
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True  # a host name other than localhost may resolve to anything


def public_bind_warning(host: str, token: str | None) -> str | None:
    if is_public(host) and token is None:
        return (f"listening on {host} without a token: anyone who can reach this address can use the server "
                "(set --token)")
    return None


def tls_context(access: Access) -> ssl.SSLContext | None:
    if not access.tls:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(access.certfile, access.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise AccessError(f"cannot load TLS certificate {access.certfile!r}: {exc}") from None
    return context
