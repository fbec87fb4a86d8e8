"""Hostile HTTP servers: bounded bodies, checked ranges, safe redirects, named errors.

The servers are :class:`hostile_servers.HostileServer` on 127.0.0.1 (raw sockets,
so they can break HTTP in ways ``http.server`` cannot). Each minimal test reads
one misbehaviour in-process and checks the error type and message; the fuzz
test reads every misbehaviour in a guarded child process and prints the counts.
"""

from __future__ import annotations

import asyncio
import re
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hostile_reads import run_cases, table
from hostile_servers import MODES, SECRETS, SIZE, HostileServer, object_bytes
from xarray_rasteret.errors import (
    PermissionDeniedError,
    ReadFailedError,
    TruncatedFileError,
)
from xarray_rasteret.storage import HTTPStore, S3Store, redact_url
from xarray_rasteret.storage._bodies import MAX_SKIP
from xarray_rasteret.storage._redirects import MAX_REDIRECTS

QUERY = f"X-Amz-Signature={SECRETS['query_signature']}&token={SECRETS['query_token']}"
HEADERS = {
    "Authorization": f"Bearer {SECRETS['authorization']}",
    "X-Api-Key": SECRETS["api_key"],
    "Cookie": f"session={SECRETS['cookie']}",
    "x-amz-security-token": SECRETS["query_token"],
}


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[HostileServer, HostileServer]]:
    """(hostile server, another origin it redirects to)."""
    with HostileServer() as other, HostileServer(other.origin) as main:
        yield main, other


@pytest.fixture
def hostile(servers: tuple[HostileServer, HostileServer]) -> HostileServer:
    main, other = servers
    for server in servers:
        with server.lock:
            server.seen.clear()
            server.counter.clear()
    return main


def _store() -> HTTPStore:
    return HTTPStore(headers=HEADERS, timeout=0.5, max_attempts=2, backoff=0.001, max_backoff=0.01)


def _read(url: str, start: int, end: int) -> bytes:
    async def main() -> bytes:
        store = _store()
        try:
            return await store.get_range_async(url, start=start, end=end)
        finally:
            await store.close()

    return asyncio.run(main())


def _error(url: str, start: int, end: int, kind: type[Exception] = ReadFailedError) -> str:
    """The message of the error reading ``[start, end)`` of ``url`` raises; checked for secrets."""
    with pytest.raises(kind) as info:
        _read(url, start, end)
    text = str(info.value)
    assert redact_url(url) in text
    assert not any(s in text for s in SECRETS.values())
    # Raised outside aiohttp's except blocks: nothing quoting the raw URL is chained.
    assert info.value.__cause__ is None and info.value.__context__ is None
    return text


def _peak(url: str, start: int, end: int) -> tuple[bytes, int]:
    """Read a range and return it with the peak of Python allocations during the read."""
    tracemalloc.start()
    try:
        data = _read(url, start, end)
        return data, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize("mode", ["ignore_range", "ignore_range_close", "endless_200",
                                  "endless_chunked"])
def test_server_ignoring_range_streams_only_the_range(hostile: HostileServer, mode: str) -> None:
    url = hostile.url(mode, query=QUERY)
    data, peak = _peak(url, 300_000, 316_384)
    assert data == object_bytes(300_000, 316_384)
    assert peak < 4 << 20, f"{peak / 2**20:.1f} MiB held to read 16 KiB of an endless body"


def test_many_reads_in_flight_from_a_server_ignoring_range_stay_bounded(
    hostile: HostileServer,
) -> None:
    # 64 tiles in flight, as a load does: each holds its range and a chunk, not the object.
    url = hostile.url("ignore_range", query=QUERY)
    starts = [i * 200_000 for i in range(64)]

    async def main() -> list[bytes]:
        store = HTTPStore(headers=HEADERS, timeout=20.0, max_attempts=2)
        try:
            return list(await asyncio.gather(
                *(store.get_range_async(url, start=s, end=s + 16384) for s in starts)
            ))
        finally:
            await store.close()

    tracemalloc.start()
    try:
        got = asyncio.run(main())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [object_bytes(s, s + 16384) for s in starts]
    assert peak < 48 << 20, f"{peak / 2**20:.1f} MiB for 64 reads of 16 KiB"


def test_range_far_into_a_server_ignoring_range_is_refused(hostile: HostileServer) -> None:
    url = hostile.url("ignore_range", query=QUERY)
    text = _error(url, MAX_SKIP + 1, MAX_SKIP + 101)
    assert "ignores Range requests" in text and f"of {SIZE} bytes" in text
    assert "supports range requests, or copy it to local disk" in text
    assert hostile.counter["ignore_range"] == 1  # refused at once, not retried


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("endless_206", "sent more than the 1000 bytes of its Content-Range (bytes 5-1004)"),
        ("huge_length_206", "with bytes 5-1004 (1000 bytes) but a Content-Length of 1000000000000"),
        ("wrong_range", "answered bytes 5-1004 with bytes 6-1005 (Content-Range)"),
        ("other_range", "answered bytes 5-1004 with bytes 0-99 (Content-Range)"),
        ("bad_content_range", "HTTP 206 and Content-Range 'bananas', which names no valid"),
        ("no_content_range", "HTTP 206 and no Content-Range"),
    ],
)
def test_answers_that_do_not_match_the_range_are_refused(
    hostile: HostileServer, mode: str, words: str
) -> None:
    tracemalloc.start()
    try:
        text = _error(hostile.url(mode, query=QUERY), 5, 1005)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert words in text and "does not answer byte-range requests correctly" in text
    assert peak < 4 << 20
    assert hostile.counter[mode] == 1  # a wrong answer is refused, not retried


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("short_range", "the server sent bytes 5-504 only"),
        ("short_body", "Not enough data to satisfy content length header (received 500 of 1000"),
        ("slow_drip", "no complete response within the 0.5 s timeout"),
        ("stall", "no complete response within the 0.5 s timeout"),
        ("close_at_once", "ServerDisconnectedError"),
    ],
)
def test_short_and_stalled_bodies_are_retried_then_named(
    hostile: HostileServer, mode: str, cause: str
) -> None:
    text = _error(hostile.url(mode, query=QUERY), 5, 1005)
    assert "bytes 5-1004" in text and "failed after 2 attempt(s)" in text and cause in text
    assert hostile.counter[mode] >= 2  # aiohttp itself may resend once on a dropped connection


def test_body_longer_than_its_length_is_never_read_as_the_next_answer(
    hostile: HostileServer,
) -> None:
    # The bytes past Content-Length come on the same keep-alive connection: aiohttp
    # parses them as the next answer, which is not HTTP. Right bytes or that error.
    url = hostile.url("long_206", query=QUERY)

    async def main() -> list[bytes | str]:
        store = _store()
        out: list[bytes | str] = []
        try:
            for s in (0, 7, 5000):
                try:
                    out.append(await store.get_range_async(url, start=s, end=s + 1000))
                except ReadFailedError as e:
                    out.append(str(e))
        finally:
            await store.close()
        return out

    for s, got in zip((0, 7, 5000), asyncio.run(main()), strict=True):
        assert got == object_bytes(s, s + 1000) or (
            isinstance(got, str) and "the server's answer is not valid HTTP" in got
        ), got


def test_status_416_is_truncated_file(hostile: HostileServer) -> None:
    text = _error(hostile.url("status_416", query=QUERY), 50, 60, TruncatedFileError)
    assert "bytes 50-59 starts past the end" in text and "(10 bytes)" in text


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("garbage_status", "Bad status line"),
        ("binary_garbage", "Bad status line"),
        ("huge_reason", "Got more than 8190 bytes"),
        ("huge_header", "Got more than 8190 bytes"),
        ("many_headers", "Too many headers"),
        ("bad_content_length", "Invalid character in Content-Length"),
        ("broken_chunks", "Invalid character in chunk size"),
    ],
)
def test_answers_that_are_not_http_are_named(
    hostile: HostileServer, mode: str, words: str
) -> None:
    text = _error(hostile.url(mode, query=QUERY), 0, 100)
    assert "the server's answer is not valid HTTP" in text and words in text
    assert len(text) < 600


# --------------------------------------------------------------------------- redirects


def test_redirect_to_another_origin_keeps_only_safe_headers(
    servers: tuple[HostileServer, HostileServer], hostile: HostileServer
) -> None:
    _, other = servers
    url = hostile.url("redirect_other", query=QUERY)
    assert _read(url, 10, 20) == object_bytes(10, 20)
    arrived = [h for path, h in other.seen]
    assert arrived and all(h["range"] == "bytes=10-19" for h in arrived)
    sent = {k for h in arrived for k in h}
    assert not sent & {k.lower() for k in HEADERS}, sent
    shown = repr(other.seen)
    assert not any(s in shown for s in SECRETS.values())


def test_redirect_within_the_origin_keeps_the_headers(hostile: HostileServer) -> None:
    url = hostile.url("redirect_same", query=QUERY)
    assert _read(url, 10, 20) == object_bytes(10, 20)
    (final,) = [h for path, h in hostile.seen if path.startswith("/ok/")]
    assert final["x-api-key"] == SECRETS["api_key"]


@pytest.mark.parametrize("mode", ["redirect_loop", "redirect_chain"])
def test_redirect_loops_end_with_a_named_error(hostile: HostileServer, mode: str) -> None:
    text = _error(hostile.url(mode, query=QUERY), 0, 10)
    assert f"redirected more than {MAX_REDIRECTS} times (a redirect loop?)" in text
    assert hostile.counter[mode] == MAX_REDIRECTS + 1


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("redirect_no_location", "answered HTTP 302 (a redirect) without a Location header"),
        ("redirect_bad_scheme", "redirected to an unusable Location ('file:///etc/passwd'"),
        ("redirect_garbage", "redirected to an unusable Location ('http://[::1'"),
    ],
)
def test_unusable_redirects_are_named(hostile: HostileServer, mode: str, words: str) -> None:
    assert words in _error(hostile.url(mode, query=QUERY), 0, 10)


# --------------------------------------------------------------------------- other errors


@pytest.mark.parametrize(
    ("url", "headers", "words"),
    [
        (f"http://[::1/x.tif?{QUERY}", {}, r"of http://\[::1/x.tif\?<redacted>: Invalid IPv6 URL"),
        (f"http://127.0.0.1:99999/x.tif?{QUERY}", {}, "Port out of range"),
        (f"http:///x.tif?{QUERY}", {}, r"http:///x.tif\?<redacted> is not a valid URL"),
        (
            f"http://reader:{SECRETS['query_token']}@127.0.0.1:9/x.tif?{QUERY}",
            {"Authorization": "Bearer " + SECRETS["authorization"]},
            "Cannot combine AUTHORIZATION header with .* credentials encoded in URL",
        ),
    ],
)
def test_invalid_requests_are_named_and_redacted(
    url: str, headers: dict[str, str], words: str
) -> None:
    store = HTTPStore(headers=headers, max_attempts=1)
    with pytest.raises(ReadFailedError, match=words) as info:
        asyncio.run(store.get_range_async(url, start=0, end=10))
    assert "check the href" in str(info.value)
    assert not any(s in str(info.value) for s in SECRETS.values())
    assert info.value.__context__ is None


def test_credential_chain_errors_become_permission_denied(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    store = S3Store(profile="no-such-profile", endpoint_url=s3_server.endpoint_url)
    with pytest.raises(PermissionDeniedError) as info:
        asyncio.run(store.get_range_async(f"{s3_server.bucket}/k.tif", start=0, end=10))
    text = str(info.value)
    assert "s3://test-bucket/k.tif" in text and "ProfileNotFound" in text
    assert "check the profile, key/secret/token" in text
    assert info.value.__context__ is None


# --------------------------------------------------------------------------- fuzz


_NOT_RANGES = "does not answer byte-range requests correctly"
_NOT_HTTP = "the server's answer is not valid HTTP"
_TIMEOUT = "failed after 2 attempt.*no complete response within the 0.5 s timeout"
# What every error of a mode must say (besides "starts past the end", for the read
# past the end of the object that every mode gets too).
PROBLEMS = {
    "ok": "^$",
    "ignore_range": "ignores Range requests",
    "ignore_range_close": f"ignores Range requests|{_NOT_RANGES}",
    "endless_200": f"ignores Range requests|{_NOT_RANGES}",
    "endless_chunked": f"ignores Range requests|{_NOT_RANGES}",
    "endless_206": "sent more than the .* bytes of its Content-Range",
    "huge_length_206": "but a Content-Length of 1000000000000",
    "long_206": _NOT_HTTP,
    "wrong_range": "answered bytes .* with (bytes|HTTP 206 and Content-Range)",
    "other_range": r"with bytes 0-99 \(Content-Range\)|the server sent bytes 0-99 only",
    "short_range": r"failed after 2 attempt.*the server sent bytes \d+-\d+ only",
    "bad_content_range": f"Content-Range 'bananas'|{_NOT_RANGES}",
    "no_content_range": f"no Content-Range|{_NOT_RANGES}",
    "short_body": "failed after 2 attempt.*Not enough data to satisfy content length",
    "slow_drip": _TIMEOUT,
    "stall": _TIMEOUT,
    "stall_headers": _TIMEOUT,
    "redirect_loop": "redirected more than 10 times",
    "redirect_chain": "redirected more than 10 times",
    "redirect_other": "^$",
    "redirect_same": "^$",
    "redirect_no_location": "without a Location header",
    "redirect_bad_scheme": "unusable Location",
    "redirect_garbage": "unusable Location",
    "status_416": f"HTTP 416 .* says it has 10 bytes|{_NOT_RANGES}",
    "status_416_bare": f"HTTP 416 without Content-Range|{_NOT_RANGES}",
    "status_204": "HTTP 204 No Content",
    "status_304": "HTTP 304 Not Modified",
    "status_999": "failed after 2 attempt.*HTTP 999",
    "status_500_endless": "failed after 2 attempt.*HTTP 500",
    "status_404_endless": r"does not exist \(HTTP 404\)",
    "status_100_then_nothing": _TIMEOUT,
    "garbage_status": f"{_NOT_HTTP} \\(Bad status line",
    "binary_garbage": f"{_NOT_HTTP} \\(Bad status line",
    "huge_reason": f"{_NOT_HTTP} \\(Got more than 8190 bytes",
    "huge_header": f"{_NOT_HTTP} \\(Got more than 8190 bytes",
    "many_headers": f"{_NOT_HTTP} \\(Too many headers",
    "bad_content_length": f"{_NOT_HTTP} \\(Invalid character in Content-Length",
    "negative_content_length": f"{_NOT_HTTP} \\(Invalid character in Content-Length",
    "broken_chunks": f"{_NOT_HTTP} \\(Invalid character in chunk size",
    "close_at_once": "failed after 2 attempt.*ServerDisconnectedError",
    "reset": "failed after 2 attempt.*(ServerDisconnectedError|ClientOSError)",
    "etag_flip": r"changed since the collection was built \(ETag 'v1' -> ",
}


@pytest.mark.slow
def test_hostile_server_fuzz(
    servers: tuple[HostileServer, HostileServer], hostile: HostileServer
) -> None:
    """Every misbehaviour, six reads each, in guarded children: only ok or clear outcomes."""
    _, other = servers
    cases = [
        {
            "mode": mode,
            "url": hostile.url(mode, query=QUERY),
            "shown": redact_url(hostile.url(mode, query=QUERY)),
            "headers": HEADERS,
            "size": SIZE,
            "timeout": 0.5,
            "secrets": list(SECRETS.values()),
        }
        for mode in MODES
    ]
    here = str(Path(__file__).resolve().parents[1])
    half = len(cases) // 2
    results = []
    with ThreadPoolExecutor(2) as pool:
        for shard in pool.map(
            lambda part: run_cases(part, timeout=30.0, mem=2 << 30, here=here),
            [cases[:half], cases[half:]],
        ):
            results.extend(shard)
    print("\n" + table(results))
    bad = [r for r in results if r.outcome not in ("ok", "clear")]
    assert not bad, "\n".join(f"{r.outcome} {r.mode}/{r.op}: {r.detail[:300]}" for r in bad)
    assert set(PROBLEMS) == set(MODES)
    unsaid = [
        r for r in results
        if r.outcome == "clear"
        and not re.search(f"{PROBLEMS[r.mode]}|starts past the end", r.detail)
    ]
    assert not unsaid, "\n".join(f"{r.mode}/{r.op}: {r.detail[:300]}" for r in unsaid)
    assert {r.mode for r in results} == set(MODES)
    assert sum(r.outcome == "ok" for r in results if r.mode == "ok") == 5  # past_end is clear
    leaked = repr([h for _, h in other.seen])
    assert not any(s in leaked for s in SECRETS.values())
