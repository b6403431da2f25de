"""The API key is checked before any body is read; bodies are capped while they stream in."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.integration.servers import running_app

pytestmark = pytest.mark.tally("bad_input")
KEY = "s3cret"


@pytest.fixture()
def keyed_url(service_settings, tiny_engine, library_voice):
    from qtts.server.app import create_app

    settings = service_settings.replace(api_key=KEY, max_upload_bytes=1024 * 1024, embedded_worker=False)
    with running_app(create_app(settings, tiny_engine)) as url:
        yield url


def _raw(url: str, head: bytes, body_chunks=(), read_after: int = 0) -> tuple[int, bytes, int]:
    """Send a request by hand; return (status, response, body chunks sent before the answer)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        sock.settimeout(0.05)
        response = b""
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
            try:
                response += sock.recv(65536)
            except (TimeoutError, socket.timeout):
                pass
            except ConnectionResetError:
                break
            if response:
                break
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in response or not _complete(response):
                data = sock.recv(65536)
                if not data:
                    break
                response += data
        except (ConnectionResetError, TimeoutError, socket.timeout):
            pass
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return status, response, sent


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def test_a_wrong_key_with_invalid_json_is_401_not_400(keyed_url):
    response = httpx.post(f"{keyed_url}/v1/jobs", content=b"{not json",
                          headers={"content-type": "application/json", "Authorization": "Bearer wrong"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "auth"


def test_a_chunked_upload_with_a_wrong_key_is_refused_before_its_body_is_read(keyed_url):
    head = (b"POST /v1/audio/voices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b"\x00" * (1 << 20))
    status, _, sent = _raw(keyed_url, head, [chunk] * 30)  # 30 MiB offered
    assert status == 401
    assert sent < 30  # the answer came while most of the body was still unsent


def test_a_chunked_body_over_the_cap_is_413_as_soon_as_it_passes(keyed_url):
    head = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
            b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (256 * 1024, b" " * (256 * 1024))
    status, response, sent = _raw(keyed_url, head, [chunk] * 120)  # 30 MiB offered, cap 2 MiB
    assert status == 413, response[:300]
    assert b"too_large" in response
    assert sent < 40


def test_a_declared_length_over_the_cap_is_413_without_reading(keyed_url):
    head = (b"POST /v1/audio/voices HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
            b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 31457280\r\n\r\n")
    status, _, _ = _raw(keyed_url, head, [b"\x00" * 65536])
    assert status == 413


def test_a_multipart_upload_over_the_cap_is_413(keyed_url):
    files = {"file": ("big.wav", b"\x00" * (3 * 1024 * 1024), "audio/wav")}
    response = httpx.post(f"{keyed_url}/v1/audio/voices", data={"voice_id": "big", "ref_text": "hi"}, files=files,
                          headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json", "/ready", "/v1/models"])
def test_documentation_and_status_need_the_key(keyed_url, path):
    assert httpx.get(keyed_url + path).status_code == 401
    assert httpx.get(keyed_url + path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_health_and_the_page_are_public(keyed_url):
    assert httpx.get(f"{keyed_url}/health").status_code == 200
    assert httpx.get(f"{keyed_url}/").status_code == 200
