"""BentoML's per-request timeout (`traffic.timeout`), without keeping every request alive for the timeout.

BentoML 1.4.40's `TimeoutMiddleware` arms `loop.call_later(timeout, ...)` for each request and never
cancels it. The timer handle holds a copy of the request's `contextvars` context — its OpenTelemetry
span (attributes, events, locks), the trace context, a future — so every request stays in memory for
`timeout` seconds after it was answered. Under steady load the service's memory therefore climbs for
a whole timeout period (120 s here) before it levels off, by `requests/s x timeout` contexts;
benchmarks/serving.py measured +27 MiB/min in a 60-s soak, and `gc` counts showed one `_Span`,
`SpanContext`, `TimerHandle` and `Future` more per request.

`install()` replaces that class, where BentoML looks it up when it builds the app, with a subclass
whose only change is to cancel the timer when the request ends (a cancelled uvloop/asyncio timer
drops its context at once). Behaviour is otherwise identical: a request still answered after
`timeout` seconds gets BentoML's 504. Nothing else in BentoML is touched, and `install()` refuses to
patch a BentoML whose middleware no longer has the shape this was written against.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from bentoml._internal.server.http import traffic
from starlette.responses import JSONResponse

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_UPSTREAM = traffic.TimeoutMiddleware


class TimerCancellingTimeoutMiddleware(_UPSTREAM):
    """BentoML's `TimeoutMiddleware` that cancels its timer when the request is done."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # type: ignore[arg-type]
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        timer = loop.call_later(self.timeout, self._set_timer_out, waiter)

        async def send_and_disarm(message: MutableMapping[str, Any]) -> None:
            if not waiter.done():
                waiter.set_result(None)
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, receive, send_and_disarm))  # type: ignore[arg-type]
        try:
            await waiter
        except TimeoutError:
            if handler.cancel():
                response = JSONResponse(
                    {"error": f"Not able to process the request in {self.timeout} seconds"}, status_code=504
                )
                await response(scope, receive, send)  # type: ignore[arg-type]
        else:
            await handler
        finally:
            timer.cancel()


def install() -> None:
    """Make BentoML build its apps with `TimerCancellingTimeoutMiddleware` (idempotent)."""
    if traffic.TimeoutMiddleware is TimerCancellingTimeoutMiddleware:
        return
    if not callable(getattr(_UPSTREAM, "_set_timer_out", None)):
        raise RuntimeError(
            "bentoml's TimeoutMiddleware changed shape (no _set_timer_out): check whether it still leaks "
            "its per-request timer and update workloads/serving/request_timeout.py"
        )
    traffic.TimeoutMiddleware = TimerCancellingTimeoutMiddleware  # type: ignore[misc]
