"""BentoML's request timeout must not keep answered requests in memory (workloads/serving/request_timeout.py)."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import weakref
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from bentoml._internal.server.base_app import BaseAppFactory
from bentoml._internal.server.http import traffic

from workloads.serving import request_timeout

REQUEST_STATE: contextvars.ContextVar[object] = contextvars.ContextVar("request_state")
"""Stands for what outer middleware (OpenTelemetry's span, the trace context) puts in a request's context."""


class RequestState:
    pass


async def answer_at_once(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def answer_after_a_while(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.sleep(5)
    await answer_at_once(scope, receive, send)


def uvloop_factory() -> asyncio.AbstractEventLoop:
    uvloop = pytest.importorskip("uvloop")
    return uvloop.new_event_loop()


# `bentoml serve` runs on uvloop when it is installed (uvicorn's default), on asyncio's loop otherwise.
LOOPS = pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop_factory], ids=["asyncio", "uvloop"])


def serve_one_request(
    middleware_class: type, app: Callable[..., Any], timeout: float, loop_factory: Callable[[], Any]
) -> tuple[int, bool]:
    """(status, whether the request's context is still referenced once the request is over)."""

    async def main() -> tuple[int, bool]:
        middleware = middleware_class(app, timeout=timeout)
        sent: list[dict[str, Any]] = []

        async def request() -> weakref.ref[RequestState]:
            state = RequestState()
            REQUEST_STATE.set(state)

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await middleware({"type": "http", "method": "POST", "path": "/classify_array"}, receive, send)
            return weakref.ref(state)

        state = await asyncio.create_task(request())  # a task per request, as uvicorn does
        await asyncio.sleep(0)
        gc.collect()
        return sent[0]["status"], state() is not None

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())


@LOOPS
def test_an_answered_request_is_released_at_once(loop_factory: Callable[[], Any]) -> None:
    status, retained = serve_one_request(
        request_timeout.TimerCancellingTimeoutMiddleware, answer_at_once, 120, loop_factory
    )
    assert status == 200
    assert not retained


@LOOPS
def test_bentoml_middleware_still_retains_answered_requests(loop_factory: Callable[[], Any]) -> None:
    """Why request_timeout exists: when this fails, BentoML has fixed its timer and the module can go."""
    status, retained = serve_one_request(request_timeout._UPSTREAM, answer_at_once, 120, loop_factory)
    assert status == 200
    assert retained


@LOOPS
def test_a_slow_request_still_gets_the_504(loop_factory: Callable[[], Any]) -> None:
    status, _ = serve_one_request(
        request_timeout.TimerCancellingTimeoutMiddleware, answer_after_a_while, 0.05, loop_factory
    )
    assert status == 504


def test_bentoml_builds_its_apps_with_the_fixed_middleware(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traffic, "TimeoutMiddleware", request_timeout._UPSTREAM)
    request_timeout.install()
    request_timeout.install()  # idempotent
    middlewares = BaseAppFactory.middlewares.fget(SimpleNamespace(timeout=120, max_concurrency=None))  # type: ignore[attr-defined]
    assert [middleware.cls for middleware in middlewares] == [request_timeout.TimerCancellingTimeoutMiddleware]
