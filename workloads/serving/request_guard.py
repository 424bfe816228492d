"""ASGI middleware in front of the classification routes: size, content type and empty bodies.

These checks run before BentoML parses anything, so an oversized or mistyped body costs nothing
and never reaches a deserialiser:

* a body larger than `max_payload_bytes` → 413 (by Content-Length, or while streaming a chunked body).
  The 413 is sent only after the rest of the body is read and dropped (up to `drain_limit_bytes`), unless
  the client sent `Expect: 100-continue` (curl does; it then never sends the body). Python's urllib and
  `requests` send the body unasked: answered before it was read, the server closes a socket with
  unread data in it, the kernel resets the connection, and the client reads "connection reset by
  peer" instead of the 413. A body larger still is answered at once (the reset is then the price of
  not reading an unbounded body);
* any pickle media type (`application/python-pickle`, `application/x-python-pickle`,
  BentoML's own `application/vnd.bentoml+pickle`, ...) → 415: unpickling client data runs code;
* a content type the route does not take (each route declares its own) → 415;
* an empty body → 400;
* on a file route, a multipart body that is malformed or holds anything but the one file field → 400
  (BentoML's own multipart parser would answer 500 for stray non-UTF-8 fields);
* on a JSON-object route, a body that is not JSON, or JSON but not an object → 400 (BentoML would
  answer with a pydantic error report; the handler then validates the object's contents itself).

Responses are JSON `{"error": "..."}` and never quote the request body.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _respond(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _multipart_problem(scope: Scope, body: bytes, field: str) -> str | None:
    """Why this multipart body is not exactly one file in `field`, or None when it is."""
    from starlette.datastructures import UploadFile
    from starlette.requests import Request

    async def nothing_more() -> Message:
        return {"type": "http.disconnect"}

    request = Request(scope, _replay(body, nothing_more))
    try:
        form = await request.form(max_files=2, max_fields=2)
    except Exception:  # starlette raises MultiPartException / HTTPException with parser details
        return "malformed multipart/form-data body"
    try:
        keys = list(form.keys())
        value = form.get(field)
        if keys != [field] or not isinstance(value, UploadFile):
            return f"send exactly one file, in the multipart field {field!r}"
        return None
    finally:
        await form.close()


def _json_object_problem(body: bytes) -> str | None:
    """Why this body is not one JSON object, or None when it is."""
    try:
        value = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return "the request body is not valid JSON"
    if not isinstance(value, dict):
        return "the request body must be a JSON object"
    return None


DRAIN_FACTOR = 4
DRAIN_FLOOR_BYTES = 32 * 1024 * 1024
"""An oversized body is drained up to max(DRAIN_FACTOR x the limit, 32 MiB) before the 413 is sent."""


def _expects_continue(scope: Scope) -> bool:
    return (_header(scope, b"expect") or "").strip().lower() == "100-continue"


async def _drain(receive: Receive, already: int, limit: int) -> bool:
    """Read and drop the rest of the body, up to `limit` bytes in all; False when the client left.

    Only for clients that did not ask `Expect: 100-continue`: uvicorn answers that expectation with
    a 100 on the first `receive()`, which would invite the body we are about to refuse.
    """
    size = already
    while size <= limit:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return True


class RequestGuard:
    """Refuse bodies that are too large, pickled, mistyped or empty on the guarded routes."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[str, tuple[str, ...]],
        max_payload_bytes: int,
        file_fields: Mapping[str, str] | None = None,
        json_object_routes: Collection[str] = (),
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        """path → accepted media types (without parameters)."""
        self.max_payload_bytes = max_payload_bytes
        self.drain_limit_bytes = max(DRAIN_FACTOR * max_payload_bytes, DRAIN_FLOOR_BYTES)
        self.file_fields = dict(file_fields or {})
        """path → the one multipart file field the route takes."""
        self.json_object_routes = frozenset(json_object_routes)
        """Paths whose body must parse as one JSON object (small bodies: parsed twice)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.routes:
            await self.app(scope, receive, send)
            return
        accepted = self.routes[scope["path"]]
        media_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if "pickle" in media_type:
            await _respond(send, 415, f"pickle payloads are refused: send {' or '.join(accepted)}")
            return
        if media_type not in accepted:
            shown = media_type or "none"
            await _respond(
                send, 415, f"unsupported content type {shown[:60]!r} for {scope['path']}: send {' or '.join(accepted)}"
            )
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _respond(send, 400, "invalid Content-Length header")
                return
            if length > self.max_payload_bytes:
                await self._refuse_too_large(scope, receive, send, 0, length)
                return
        # Read the whole (bounded) body here, then replay it: a chunked body cannot slip past the limit.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_payload_bytes:
                if message.get("more_body", False):
                    await self._refuse_too_large(scope, receive, send, size, None)
                else:
                    await _respond(send, 413, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if size == 0:
            await _respond(send, 400, "the request body is empty")
            return
        body = b"".join(chunks)
        field = self.file_fields.get(scope["path"])
        if field is not None:
            problem = await _multipart_problem(scope, body, field)
            if problem is not None:
                await _respond(send, 400, problem)
                return
        if scope["path"] in self.json_object_routes:
            problem = _json_object_problem(body)
            if problem is not None:
                await _respond(send, 400, problem)
                return
        await self.app(scope, _replay(body, receive), send)

    async def _refuse_too_large(
        self, scope: Scope, receive: Receive, send: Send, read: int, declared: int | None
    ) -> None:
        """413, once the client has sent its body (within the drain limit) so that it can read the answer."""
        drainable = declared is None or declared <= self.drain_limit_bytes
        if drainable and not _expects_continue(scope) and not await _drain(receive, read, self.drain_limit_bytes):
            return  # the client left: nobody reads an answer
        await _respond(send, 413, self._too_large())

    def _too_large(self) -> str:
        return f"the request body is larger than the limit of {self.max_payload_bytes} bytes (MLOPS_MAX_PAYLOAD_BYTES)"
