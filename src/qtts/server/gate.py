"""The door of the HTTP app: the API key is checked, and the body capped, before any route
reads a byte of the body.

A pure ASGI middleware, outermost in the app, because FastAPI parses a JSON or multipart
body before it runs a route's dependencies: a stranger's 30 MiB upload would be read, and
a malformed body would get 400 instead of 401.  Here a request without the key gets 401 at
once; a body is counted while it streams in (chunked or not), and passing the cap raises
``BodyTooLarge`` out of ``receive``, which the app's error handler turns into 413; the rest of
the body is never read.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException

from qtts.errors import AuthError, TooLarge

PUBLIC_PATHS = frozenset({"/health", "/"})  # liveness and the web page (which asks for the key itself)
BODY_SLACK = 1024 * 1024  # multipart framing and form fields around an upload of the maximum size

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """Raised out of ``receive`` when the body passes the cap.  An ``HTTPException``, because
    FastAPI turns any other exception met while reading a JSON body into a 400."""

    def __init__(self, error: TooLarge) -> None:
        super().__init__(status_code=error.http_status, detail=error.message)
        self.error = error


class Gate:
    def __init__(self, app: Any, api_key: str, max_body_bytes: int,
                 error_body: Callable[[str, int, str, str], dict[str, Any]]) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes + BODY_SLACK
        self.error_body = error_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        preflight = scope.get("method") == "OPTIONS"  # CORS preflights carry no credentials, nor a body
        if self.api_key and not preflight and scope.get("path") not in PUBLIC_PATHS and not self._authorized(headers):
            error = AuthError("missing or wrong API key",
                              hint="send 'Authorization: Bearer <key>' (the server's --api-key)")
            await self._refuse(send, error.http_status, error.message, error.category, error.hint)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._refuse(send, 413, self._too_large().message, "too_large", self._too_large().hint)
            return
        await self.app(scope, self._capped(receive), send)

    def _authorized(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode())

    def _too_large(self) -> TooLarge:
        limit = (self.max_body_bytes - BODY_SLACK) // (1024 * 1024)
        return TooLarge(f"the request body is over {limit} MiB", hint="send a shorter clip (3-15 s is best)")

    def _capped(self, receive: Receive) -> Receive:
        seen = 0

        async def capped_receive() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge(self._too_large())
            return message

        return capped_receive

    async def _refuse(self, send: Send, status: int, message: str, code: str, hint: str) -> None:
        body = json.dumps(self.error_body(message, status, code, hint)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        if status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
