"""Transport-level guards of the catalog server: request size limits, security headers, bearer tokens.

The limits live in one small ASGI middleware (not in the endpoints) so that no route can forget
them, and so that an oversized body is refused before any of it reaches a parser.
"""

from __future__ import annotations

import hmac
import ipaddress
import json

from fastapi import HTTPException, Request

MAX_URL_BYTES = 8 * 1024  # path + query string; a longer URL is a mistake or an attack, not a search

# The page may only load its own files: no inline script/style, no third-party origin.
PAGE_CSP = "default-src 'self'; img-src 'self' data:"
# Analysis reports are files written by analyses (HTML with inline style and data: images): shown
# sandboxed (an opaque origin, no script) so that a report can never act with the API's origin.
REPORT_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"

_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface


async def _send_error(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"content-security-policy", PAGE_CSP.encode()), *_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """ASGI middleware: 414 for long URLs, 413 for large bodies, security headers on every response.

    The body is read (and counted) before the application sees it: Content-Length is checked
    first, then the streamed bytes, so a client that lies about the length or streams chunks
    is cut off at ``max_request_bytes`` too. Buffering is bounded by that same limit.
    """

    def __init__(self, app, *, max_request_bytes: int):
        self.app = app
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b"")) > MAX_URL_BYTES:
            return await _send_error(send, 414, f"URL too long (more than {MAX_URL_BYTES} bytes)")
        limit = self.max_request_bytes
        too_big = f"request body too large (more than {limit} bytes)"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_error(send, 400, "Content-Length is not a number")
                if declared > limit:
                    return await _send_error(send, 413, too_big)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return await _send_error(send, 413, too_big)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in present:  # a report keeps its sandbox policy
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                headers.extend(h for h in _HEADERS if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, replay, send_with_headers)


def require_token(request: Request) -> None:
    """FastAPI dependency of every write endpoint: 403 on a read-only server, 401 without the right bearer."""
    token = request.app.state.token
    if token is None:
        raise HTTPException(403, "read-only server: start it with --token to allow ingest and delete")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest on bytes of any length: the time taken does not reveal how much of the token matched
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(401, "missing or wrong token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
