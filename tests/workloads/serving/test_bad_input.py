"""Every kind of bad request gets a 4xx with a clear message, never echoes the input, and the
service stays ready and keeps classifying."""

from __future__ import annotations

import json
import pickle
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from tests.workloads.serving.conftest import PAYLOAD_LIMIT, DigitsVersions, http_status
from tests.workloads.serving.images import png_bytes
from workloads.serving.local import LocalModelService

MARKER = "ECHO-CANARY-7f3a"


def _array_post(url: str, body: object) -> requests.Response:
    return requests.post(f"{url}/classify_array", json=body, timeout=30)


def _file_post(url: str, data: bytes, name: str = "image.png", media_type: str = "image/png") -> requests.Response:
    return requests.post(f"{url}/classify_image", files={"image": (name, data, media_type)}, timeout=30)


def _raw_post(url: str, route: str, data: bytes | str, content_type: str) -> requests.Response:
    """A body sent as it is, under the content type given (what a careless or hostile client sends)."""
    return requests.post(f"{url}/{route}", data=data, headers={"Content-Type": content_type}, timeout=30)


def _truncated_png(digits_versions: DigitsVersions) -> bytes:
    whole = png_bytes(digits_versions.data.test_images[0])
    return whole[: len(whole) // 2]


CASES = {
    "non-image bytes": (lambda url, d: _file_post(url, f"{MARKER} plain text, not pixels".encode()), 415, "not a PNG"),
    "truncated png": (lambda url, d: _file_post(url, _truncated_png(d)), 400, "truncated or corrupt"),
    "wrong array shape": (
        lambda url, d: _array_post(url, {"image": [[1, 2, 3]] * 5}),
        422,
        "expected an array of shape",
    ),
    "wrong dtype": (lambda url, d: _array_post(url, {"image": [[0] * 8] * 8, "dtype": "int64"}), 422, "dtype"),
    "non-numbers": (lambda url, d: _array_post(url, {"image": [[MARKER] * 8] * 8}), 422, "only numbers"),
    "empty body": (lambda url, d: _raw_post(url, "classify_array", b"", "application/json"), 400, "empty"),
    "wrong content type": (
        lambda url, d: _raw_post(url, "classify_array", MARKER.encode(), "text/plain"),
        415,
        "unsupported content type",
    ),
    "file sent as json route": (
        lambda url, d: _raw_post(url, "classify_image", json.dumps({"image": MARKER}), "application/json"),
        415,
        "multipart/form-data",
    ),
    "payload above the limit": (
        lambda url, d: _file_post(url, png_bytes(d.data.test_images[0]) + MARKER.encode() * (PAYLOAD_LIMIT // 8)),
        413,
        "larger than the limit",
    ),
    **{
        f"{name} content type": (
            lambda url, d, media_type=media_type: _raw_post(
                url, "classify_array", pickle.dumps({"image": MARKER}), media_type
            ),
            415,
            "pickle payloads are refused",
        )
        for name, media_type in (
            ("pickle", "application/python-pickle"),
            ("bentoml pickle", "application/vnd.bentoml+pickle"),
        )
    },
    "malformed json": (
        lambda url, d: _raw_post(url, "classify_array", b'{"image": [[' + MARKER.encode(), "application/json"),
        400,
        "",
    ),
    "missing file field": (
        lambda url, d: requests.post(f"{url}/classify_image", files={"other": ("x.png", b"\x89PNG", "image/png")}),
        400,
        "multipart field 'image'",
    ),
    "image sent as a form value": (
        lambda url, d: requests.post(f"{url}/classify_image", data={"image": MARKER}),
        415,
        "multipart/form-data",
    ),
    "image as a text field in multipart": (
        lambda url, d: requests.post(f"{url}/classify_image", files={"image": (None, MARKER)}, timeout=30),
        400,
        "multipart field 'image'",
    ),
    "malformed multipart": (
        lambda url, d: _raw_post(
            url,
            "classify_image",
            b"--xyz\r\nContent-Disposition: form-data; name=image\r\n" + MARKER.encode(),
            "multipart/form-data; boundary=xyz",
        ),
        400,
        "",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_a_clear_4xx_without_echo(
    case: str, digits_service: LocalModelService, digits_versions: DigitsVersions
) -> None:
    send, status, fragment = CASES[case]
    response = send(digits_service.url, digits_versions)
    assert response.status_code == status, response.text[:300]
    assert fragment in response.text
    assert MARKER not in response.text
    assert len(response.content) < 1000
    assert http_status(f"{digits_service.url}/readyz") == 200


def test_service_still_classifies_after_the_bad_inputs(
    digits_service: LocalModelService, digits_versions: DigitsVersions
) -> None:
    image = digits_versions.data.test_images[0]
    response = _file_post(digits_service.url, png_bytes(image))
    assert response.status_code == 200
    assert "status=500" not in digits_service.log_text()
    assert digits_service.process.poll() is None


OVERSIZED = 16 * 1024 * 1024
"""Beyond what loopback socket buffers absorb (so an unread body is reset), within the drain limit."""


def _urllib_post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/classify_array", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def _requests_post(url: str, body: bytes) -> tuple[int, str]:
    response = requests.post(
        f"{url}/classify_array", data=body, headers={"Content-Type": "application/json"}, timeout=60
    )
    return response.status_code, response.text


def _requests_chunked_post(url: str, body: bytes) -> tuple[int, str]:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found while streaming
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    response = requests.post(
        f"{url}/classify_array", data=chunks(), headers={"Content-Type": "application/json"}, timeout=60
    )
    return response.status_code, response.text


@pytest.mark.parametrize("send", [_urllib_post, _requests_post, _requests_chunked_post], ids=lambda f: f.__name__)
def test_an_oversized_body_sent_unasked_still_gets_its_413(send: object, digits_service: LocalModelService) -> None:
    """urllib and requests send the body without `Expect: 100-continue`: they must read the 413, not a reset."""
    status, text = send(digits_service.url, b"[" * OVERSIZED)  # type: ignore[operator]
    assert status == 413 and "larger than the limit" in text
    assert http_status(f"{digits_service.url}/readyz") == 200


def test_a_client_that_expects_100_continue_gets_the_413_without_sending_the_body(
    digits_service: LocalModelService,
) -> None:
    address = urlsplit(digits_service.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(
            f"POST /classify_array HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {OVERSIZED}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
