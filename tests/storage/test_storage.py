"""The storage layer against real loopback servers: conformance, faults, concurrency, routing."""

from __future__ import annotations

import asyncio
import os
import pickle
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import obstore.store
import pytest

from xarray_rasteret._sync import sync
from xarray_rasteret.errors import (
    ObjectChangedError,
    ObjectNotFoundError,
    PermissionDeniedError,
    ReadFailedError,
    TruncatedFileError,
)
from xarray_rasteret.storage import (
    CountingStore,
    HTTPStore,
    LocalStore,
    S3Store,
    get_range_checked,
    object_info,
    redact_url,
    resolve_store,
    track,
)
from xarray_rasteret.storage._retry import RetryPolicy, scrub

NAME = "blob.bin"
FAST = {"backoff": 0.001, "max_backoff": 0.01}  # retries without waiting in tests


def run(coro: Any) -> Any:
    """Run a coroutine on a fresh loop, as a user script would."""
    return asyncio.run(coro)


# --------------------------------------------------------------------------- conformance


@pytest.fixture(params=["local", "http", "s3", "obstore-local", "obstore-http", "obstore-s3"])
def case(
    request: pytest.FixtureRequest, tmp_path: Path, storage_blob: bytes
) -> tuple[Any, str, bool]:
    """(store, path, supports empty ranges) for ``storage_blob`` in each kind of store."""
    kind = request.param
    if kind in ("local", "obstore-local"):
        (tmp_path / NAME).write_bytes(storage_blob)
        href = str(tmp_path / NAME)
        if kind == "local":
            return (*resolve_store(href), True)
        backend = obstore.store.LocalStore(tmp_path)
        return (*resolve_store(href, backend=backend), False)
    if kind in ("http", "obstore-http"):
        server = request.getfixturevalue("http_server")
        (Path(server.root) / NAME).write_bytes(storage_blob)
        href = server.url(NAME)
        if kind == "http":
            return (*resolve_store(href), True)
        backend = obstore.store.HTTPStore.from_url(
            server.url(), client_options={"allow_http": True}
        )
        return (*resolve_store(href, backend=backend), False)
    s3 = request.getfixturevalue("s3_server")
    s3.upload(NAME, storage_blob)
    href = f"s3://{s3.bucket}/{NAME}"
    if kind == "s3":
        return (*resolve_store(href, storage_options=s3.storage_options), True)
    backend = obstore.store.S3Store(
        s3.bucket,
        endpoint=s3.endpoint_url,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        client_options={"allow_http": True},
    )
    return (*resolve_store(href, backend=backend), False)


class TestStoreConformance:
    """Every store (ours and obstore's through ``backend=``) reads the same bytes."""

    def test_single_range(self, case: tuple[Any, str, bool], storage_blob: bytes) -> None:
        store, path, _ = case
        got = run(store.get_range_async(path, start=100, end=5000))
        assert bytes(got) == storage_blob[100:5000]
        got = run(store.get_range_async(path, start=7, length=9))
        assert bytes(got) == storage_blob[7:16]

    def test_several_ranges(self, case: tuple[Any, str, bool], storage_blob: bytes) -> None:
        store, path, _ = case
        starts, ends = [0, 65536, 1000, 200_000], [10, 70000, 1001, 262_000]
        got = run(store.get_ranges_async(path, starts=starts, ends=ends))
        assert [bytes(b) for b in got] == [
            storage_blob[s:e] for s, e in zip(starts, ends, strict=True)
        ]
        got = run(store.get_ranges_async(path, starts=[5, 50], lengths=[3, 4]))
        assert [bytes(b) for b in got] == [storage_blob[5:8], storage_blob[50:54]]

    def test_range_at_end_of_file(self, case: tuple[Any, str, bool], storage_blob: bytes) -> None:
        store, path, _ = case
        n = len(storage_blob)
        assert bytes(run(store.get_range_async(path, start=n - 123, end=n))) == storage_blob[-123:]
        # Past the end clamps, as obstore does.
        assert (
            bytes(run(store.get_range_async(path, start=n - 10, end=n + 50)))
            == (storage_blob[-10:])
        )

    def test_empty_range(self, case: tuple[Any, str, bool]) -> None:
        store, path, supports_empty = case
        if not supports_empty:
            with pytest.raises(ValueError):  # obstore refuses empty ranges
                run(store.get_range_async(path, start=10, end=10))
            return
        assert bytes(run(store.get_range_async(path, start=10, end=10))) == b""

    def test_pickle_round_trip(self, case: tuple[Any, str, bool], storage_blob: bytes) -> None:
        store, path, _ = case
        run(store.get_range_async(path, start=0, end=1))  # a session exists on some loop
        clone = pickle.loads(pickle.dumps(store))
        assert bytes(run(clone.get_range_async(path, start=3, end=99))) == storage_blob[3:99]

    def test_object_info(self, case: tuple[Any, str, bool], storage_blob: bytes) -> None:
        store, path, _ = case
        info = run(object_info(store, path))
        assert info.size == len(storage_blob)


@pytest.mark.parametrize("kind", ["local", "http", "s3"])
def test_range_starting_past_end_is_truncated_file(
    kind: str, tmp_path: Path, storage_blob: bytes, request: pytest.FixtureRequest
) -> None:
    if kind == "local":
        (tmp_path / NAME).write_bytes(storage_blob)
        store, path = resolve_store(str(tmp_path / NAME))
    elif kind == "http":
        server = request.getfixturevalue("http_server")
        (Path(server.root) / NAME).write_bytes(storage_blob)
        store, path = resolve_store(server.url(NAME))
    else:
        s3 = request.getfixturevalue("s3_server")
        s3.upload(NAME, storage_blob)
        store, path = resolve_store(f"s3://{s3.bucket}/{NAME}", storage_options=s3.storage_options)
    n = len(storage_blob)
    with track() as stats:
        with pytest.raises(TruncatedFileError, match=f"bytes {n + 5}-{n + 9}"):
            run(store.get_range_async(path, start=n + 5, end=n + 10))
    assert stats.retries == 0


# --------------------------------------------------------------------------- HTTP details


@pytest.fixture
def blob_url(http_server: Any, storage_blob: bytes) -> str:
    (Path(http_server.root) / NAME).write_bytes(storage_blob)
    return str(http_server.url(NAME))


def test_http_keep_alive_reuses_connections(http_server: Any, blob_url: str) -> None:
    store = HTTPStore()

    async def main() -> None:
        for i in range(50):
            await store.get_range_async(blob_url, start=i, end=i + 10)

    run(main())
    assert http_server.stats.requests == 50
    assert http_server.stats.connections == 1


def test_http_server_ignoring_range_is_sliced(
    http_server: Any, blob_url: str, storage_blob: bytes
) -> None:
    http_server.set_faults(ignore_range=True)
    got = run(HTTPStore().get_range_async(blob_url, start=1000, end=1100))
    assert got == storage_blob[1000:1100]


def test_http_headers_are_sent_and_never_shown(http_server: Any, blob_url: str) -> None:
    store, _ = resolve_store(
        blob_url, storage_options={"headers": {"Authorization": "Bearer S3KR1T"}}
    )
    assert "S3KR1T" not in repr(store)
    assert run(store.get_range_async(blob_url, start=0, end=4))


def test_session_per_loop_and_closed_with_it(blob_url: str, storage_blob: bytes) -> None:
    store = HTTPStore()
    assert run(store.get_range_async(blob_url, start=0, end=8)) == storage_blob[:8]
    assert len(store._clients) == 0  # closed when asyncio.run shut its loop down
    # The background loop of the sync bridge keeps its own session.
    assert sync(store.get_range_async(blob_url, start=8, end=16)) == storage_blob[8:16]
    assert run(store.get_range_async(blob_url, start=16, end=24)) == storage_blob[16:24]
    assert len(store._clients) == 1
    sync(store.close())
    assert len(store._clients) == 0


# --------------------------------------------------------------------------- faults


def test_faults_are_retried_and_bytes_exact(
    http_server: Any, blob_url: str, storage_blob: bytes
) -> None:
    http_server.set_faults(
        p_503=0.2,
        p_500=0.03,
        p_429=0.03,
        p_drop=0.05,
        p_truncate=0.05,
        p_slow=0.03,
        slow_seconds=1.0,
        seed=7,
    )
    # About 39% of attempts fail, so 12 attempts still lost one of 300 ranges
    # about once in 280 runs (0.39**12 * 300); with 30 it is about 1e-10.
    store = HTTPStore(timeout=0.3, max_attempts=30, **FAST)
    rng = random.Random(3)
    n = len(storage_blob)
    ranges = []
    for _ in range(300):
        start = rng.randrange(0, n - 1)
        ranges.append((start, min(n, start + rng.randrange(1, 20000))))

    async def main() -> list[bytes]:
        sem = asyncio.Semaphore(32)

        async def one(s: int, e: int) -> bytes:
            async with sem:
                return await store.get_range_async(blob_url, start=s, end=e)

        return await asyncio.gather(*(one(s, e) for s, e in ranges))

    with track() as stats:
        got = run(main())
    assert got == [storage_blob[s:e] for s, e in ranges]
    faults = http_server.stats.faults
    assert all(faults.get(k, 0) > 0 for k in ("503", "500", "429", "drop", "truncate", "slow"))
    assert stats.retries >= sum(faults.values()) - 5  # a few faults hit only the 1-byte tail
    assert stats.retries > 0


def test_not_found_is_immediate_with_url(http_server: Any, blob_url: str) -> None:
    http_server.set_faults(missing={NAME})
    with track() as stats:
        t0 = time.perf_counter()
        with pytest.raises(ObjectNotFoundError, match="does not exist") as info:
            run(HTTPStore().get_range_async(blob_url, start=0, end=10))
    assert time.perf_counter() - t0 < 1.0
    assert stats.retries == 0
    assert blob_url in str(info.value)
    assert isinstance(info.value, FileNotFoundError)


def test_forbidden_signed_url_is_redacted(http_server: Any, blob_url: str) -> None:
    http_server.set_faults(forbidden={NAME})
    signed = (
        f"{blob_url}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAFAKEKEY%2F20260101"
        "&X-Amz-Signature=deadbeefcafe&X-Amz-Expires=60"
    )
    store, path = resolve_store(
        signed, storage_options={"headers": {"Authorization": "Bearer TOPSECRET"}}
    )
    assert isinstance(store, HTTPStore)  # signed S3-style URLs stay plain HTTP
    with track() as stats:
        with pytest.raises(PermissionDeniedError) as info:
            run(store.get_range_async(path, start=0, end=10))
    message = str(info.value)
    assert stats.retries == 0
    assert blob_url + "?<redacted>" in message and "credentials" in message
    for secret in ("deadbeefcafe", "AKIAFAKEKEY", "TOPSECRET"):
        assert secret not in message


def test_exhausted_retries_name_url_range_and_cause(http_server: Any, blob_url: str) -> None:
    http_server.set_faults(p_503=1.0)
    store = HTTPStore(max_attempts=3, **FAST)
    with track() as stats:
        with pytest.raises(ReadFailedError) as info:
            run(store.get_range_async(blob_url, start=10, end=20))
    message = str(info.value)
    assert blob_url in message and "bytes 10-19" in message and "HTTP 503" in message
    assert stats.retries == 2
    assert http_server.stats.requests == 3


def test_stalled_response_times_out_and_is_retried(http_server: Any, blob_url: str) -> None:
    http_server.set_faults(p_slow=1.0, slow_seconds=2.0)
    store = HTTPStore(timeout=0.1, max_attempts=2, **FAST)
    t0 = time.perf_counter()
    with pytest.raises(ReadFailedError, match="timeout"):
        run(store.get_range_async(blob_url, start=0, end=10))
    assert time.perf_counter() - t0 < 1.5


def test_redact_url() -> None:
    assert redact_url("https://u:pw@h/a.tif?X-Amz-Signature=1") == "https://h/a.tif?<redacted>"
    assert redact_url("https://h/a.tif?sig=abc&se=2026") == "https://h/a.tif?<redacted>"
    assert redact_url("https://h/a.tif?version=3") == "https://h/a.tif?version=3"
    assert redact_url("/data/a.tif") == "/data/a.tif"
    # Unparseable (an unclosed IPv6 bracket): what precedes the query, without user info.
    assert redact_url("http://u:pw@[::1/a.tif?token=t") == "http://[::1/a.tif?<redacted>"


def test_scrub_removes_url_secrets_in_any_form() -> None:
    url = "https://u:pw-Z9@h/a.tif?X-Amz-Signature=ab%2Fcd&X-Amz-Credential=AKIA/x"
    # aiohttp and yarl print URLs decoded or re-encoded; user info and values go in any form.
    text = (
        f"failed {url}; url=https://h/a.tif?X-Amz-Signature=ab/cd&X-Amz-Credential=AKIA%2Fx; "
        "auth pw-Z9; header HDRVAL"
    )
    got = scrub(text, url, ["HDRVAL"])
    assert "https://h/a.tif?<redacted>" in got
    for secret in ("pw-Z9", "ab/cd", "ab%2Fcd", "AKIA/x", "AKIA%2Fx", "HDRVAL"):
        assert secret not in got, secret


def test_retry_policy_backoff_is_bounded() -> None:
    policy = RetryPolicy(max_attempts=5, backoff=0.5, max_backoff=2.0)
    assert all(0 <= policy.delay(n) <= min(2.0, 0.5 * 2**n) for n in range(10) for _ in range(20))
    assert policy.delay(0, retry_after=100) == 2.0
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# --------------------------------------------------------------------------- concurrency


def _bounded_reads(store: HTTPStore, url: str, count: int, bound: int) -> float:
    async def main() -> None:
        sem = asyncio.Semaphore(bound)

        async def one(i: int) -> None:
            async with sem:
                await store.get_range_async(url, start=i, end=i + 100)

        await asyncio.gather(*(one(i) for i in range(count)))

    t0 = time.perf_counter()
    run(main())
    return time.perf_counter() - t0


def test_server_in_flight_stays_within_the_callers_bound(http_server: Any, blob_url: str) -> None:
    # 20 ms per request: long enough that 32 callers overlap even on a loaded machine.
    http_server.set_faults(latency=0.02)
    _bounded_reads(HTTPStore(), blob_url, 500, 32)
    assert http_server.stats.requests == 500
    assert 16 <= http_server.stats.max_in_flight <= 32


def test_http_store_does_not_serialize(http_server: Any, blob_url: str) -> None:
    http_server.set_faults(latency=0.04)
    elapsed = _bounded_reads(HTTPStore(), blob_url, 64, 32)
    # Two round trips of 40 ms plus connection setup; serial would be 64 x 40 ms = 2.6 s.
    assert elapsed < 0.6, elapsed
    assert http_server.stats.max_in_flight >= 24


# --------------------------------------------------------------------------- staleness


def test_http_staleness_detected_from_the_read_itself(
    http_server: Any, blob_url: str, storage_blob: bytes
) -> None:
    store = CountingStore(HTTPStore())
    info = run(object_info(store, blob_url))
    assert info.size == len(storage_blob) and info.etag
    http_server.reset()
    got = run(get_range_checked(store, blob_url, start=5, end=50, size=info.size, etag=info.etag))
    assert bytes(got) == storage_blob[5:50]
    assert http_server.stats.requests == 1  # no extra request for the check
    # Same size, rewritten: the ETag changes.
    path = Path(http_server.root) / NAME
    path.write_bytes(storage_blob)
    os.utime(path, ns=(1, 1))
    with pytest.raises(ObjectChangedError, match="ETag") as err:
        run(get_range_checked(store, blob_url, start=5, end=50, size=info.size, etag=info.etag))
    assert blob_url in str(err.value)
    path.write_bytes(storage_blob[:-1])
    with pytest.raises(ObjectChangedError, match="size"):
        run(get_range_checked(store, blob_url, start=5, end=50, size=info.size, etag=None))
    # size=None skips the check.
    assert run(get_range_checked(store, blob_url, start=5, end=50, size=None))
    with pytest.raises(TruncatedFileError):
        run(get_range_checked(store, blob_url, start=5, end=info.size + 1, size=info.size))


def test_s3_staleness(s3_server: Any, storage_blob: bytes) -> None:
    etag = s3_server.upload(NAME, storage_blob)
    store, path = resolve_store(
        f"s3://{s3_server.bucket}/{NAME}", storage_options=s3_server.storage_options
    )
    info = run(object_info(store, path))
    assert (info.size, info.etag) == (len(storage_blob), etag)
    run(get_range_checked(store, path, start=0, end=10, size=info.size, etag=info.etag))
    s3_server.upload(NAME, storage_blob[::-1])
    with pytest.raises(ObjectChangedError, match="ETag"):
        run(get_range_checked(store, path, start=0, end=10, size=info.size, etag=info.etag))


def test_local_staleness(tmp_path: Path, storage_blob: bytes) -> None:
    (tmp_path / NAME).write_bytes(storage_blob)
    store, path = resolve_store(str(tmp_path / NAME))
    info = run(object_info(store, path))
    assert (info.size, info.etag) == (len(storage_blob), None)
    (tmp_path / NAME).write_bytes(storage_blob + b"x")
    with pytest.raises(ObjectChangedError, match="size"):
        run(get_range_checked(store, path, start=0, end=10, size=info.size))


def test_changed_object_message_names_check_unchanged_false(
    sample_folder: Path, tmp_path: Path
) -> None:
    """The message names the way to read anyway, and that way reads the pixels right."""
    import shutil

    import numpy as np
    import rasterio
    import xarray as xr

    import xarray_rasteret as xrr

    tif = tmp_path / "S2X_33TWN_20240503_L2A_B04.tif"
    shutil.copy(sample_folder / tif.name, tif)
    xrr.build([tif]).to_parquet(tmp_path / "c.parquet")
    with tif.open("ab") as f:  # grown, pixels untouched: GDAL still reads it the same
        f.write(b"\0" * 16)
    with xr.open_dataset(tmp_path / "c.parquet", engine="rasteret") as ds:
        with pytest.raises(ObjectChangedError, match=r"pass check_unchanged=False") as err:
            ds.band_1.load()
    assert str(tif) in str(err.value) and "rebuild the collection" in str(err.value)
    with xr.open_dataset(tmp_path / "c.parquet", engine="rasteret", check_unchanged=False) as ds:
        got = ds.band_1.isel(time=0).values
    with rasterio.open(tif) as src:
        np.testing.assert_array_equal(got, src.read(1))


def test_short_read_message_names_check_unchanged_false(tmp_path: Path) -> None:
    class Short:  # a user store without checked reads, answering fewer bytes than asked
        async def get_range_async(self, path: str, *, start: int, end: int) -> bytes:
            return b"x" * (end - start - 1)

    with pytest.raises(ObjectChangedError, match="shorter than when the collection was built: "
                       "rebuild the collection, or pass check_unchanged=False"):
        run(get_range_checked(Short(), "mem/a.tif", start=0, end=10, size=100))


# --------------------------------------------------------------------------- S3 details


def test_s3_errors_and_secrets(s3_server: Any) -> None:
    options = {**s3_server.storage_options, "key": "AKIASECRETID", "secret": "SUPERSECRETVALUE"}
    store, path = resolve_store(f"s3://{s3_server.bucket}/missing.tif", storage_options=options)
    assert "SUPERSECRET" not in repr(store) and "AKIASECRETID" not in repr(store)
    with pytest.raises(ObjectNotFoundError) as info:
        run(store.get_range_async(path, start=0, end=10))
    message = str(info.value)
    assert f"s3://{s3_server.bucket}/missing.tif" in message
    assert "SUPERSECRET" not in message and "AKIASECRETID" not in message
    store, path = resolve_store("s3://no-such-bucket/a.tif", storage_options=options)
    with pytest.raises(ObjectNotFoundError):
        run(store.get_range_async(path, start=0, end=10))


def test_s3_anon_and_requester_pays(s3_server: Any, storage_blob: bytes) -> None:
    s3_server.upload("private.bin", storage_blob)
    anon, path = resolve_store(
        f"s3://{s3_server.bucket}/private.bin",
        storage_options={"endpoint_url": s3_server.endpoint_url, "anon": True},
    )
    with pytest.raises(PermissionDeniedError, match="anon=True only for public"):
        run(anon.get_range_async(path, start=0, end=64))
    s3_server.upload(NAME, storage_blob, public=True)
    for extra in ({"anon": True}, {"requester_pays": True}):
        options = {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1", **extra}
        store, path = resolve_store(f"s3://{s3_server.bucket}/{NAME}", storage_options=options)
        assert run(store.get_range_async(path, start=0, end=64)) == storage_blob[:64]


def test_s3_endpoint_url_path_style_http_urls(s3_server: Any, storage_blob: bytes) -> None:
    s3_server.upload(NAME, storage_blob)
    href = f"{s3_server.endpoint_url}/{s3_server.bucket}/{NAME}"
    store, path = resolve_store(href, storage_options=s3_server.storage_options)
    assert isinstance(store, S3Store) and path == f"{s3_server.bucket}/{NAME}"
    assert sync(store.get_range_async(path, start=1, end=3)) == storage_blob[1:3]


def test_s3_profile_credentials(
    s3_server: Any, storage_blob: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_server.upload(NAME, storage_blob)
    creds = tmp_path / "credentials"
    creds.write_text("[reader]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    options = {"endpoint_url": s3_server.endpoint_url, "profile": "reader"}
    store, path = resolve_store(f"s3://{s3_server.bucket}/{NAME}", storage_options=options)
    assert run(store.get_range_async(path, start=0, end=32)) == storage_blob[:32]


def _dead_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", ["http", "s3"])
def test_refused_connections_are_retried_then_fail(kind: str, s3_server: Any) -> None:
    port = _dead_port()
    if kind == "http":
        store: Any = HTTPStore(max_attempts=3, **FAST)
        path = f"http://127.0.0.1:{port}/a.tif"
    else:
        store = S3Store(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=3, **FAST)
        path = "bkt/a.tif"
    with track() as stats:
        with pytest.raises(ReadFailedError, match="bytes 0-9") as info:
            run(store.get_range_async(path, start=0, end=10))
    assert stats.retries == 2
    assert "a.tif" in str(info.value) and "Error" in str(info.value)


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "AccessDenied", PermissionDeniedError),
        (403, "InvalidAccessKeyId", PermissionDeniedError),
        (400, "ExpiredToken", PermissionDeniedError),
        (404, "NoSuchBucket", ObjectNotFoundError),
        (416, "InvalidRange", TruncatedFileError),
        (400, "InvalidArgument", ReadFailedError),
    ],
)
def test_s3_error_answers_raise_named_errors(
    s3_server: Any, storage_blob: bytes, status: int, code: str, expected: type
) -> None:
    s3_server.upload(NAME, storage_blob)
    store = S3Store(**s3_server.storage_options, **FAST)
    s3_server.gate.fail_next(1, status, code)
    with track() as stats:
        with pytest.raises(expected) as info:
            run(store.get_range_async(f"{s3_server.bucket}/{NAME}", start=0, end=10))
    assert stats.retries == 0
    assert f"s3://{s3_server.bucket}/{NAME}" in str(info.value)
    if expected is PermissionDeniedError:
        assert code in str(info.value) and "requester_pays" in str(info.value)
    if expected is ReadFailedError:
        assert str(status) in str(info.value)


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError"),
                                              (400, "RequestTimeout")])
def test_s3_transient_answers_are_retried(
    s3_server: Any, storage_blob: bytes, status: int, code: str
) -> None:
    s3_server.upload(NAME, storage_blob)
    store = S3Store(**s3_server.storage_options, **FAST)
    s3_server.gate.fail_next(2, status, code)
    with track() as stats:
        got = run(store.get_range_async(f"{s3_server.bucket}/{NAME}", start=100, end=5000))
    assert got == storage_blob[100:5000]
    assert stats.retries == 2


def test_s3_cut_and_stalled_bodies_are_retried(s3_server: Any, storage_blob: bytes) -> None:
    s3_server.upload(NAME, storage_blob)
    store = S3Store(**s3_server.storage_options, timeout=0.5, **FAST)
    path = f"{s3_server.bucket}/{NAME}"
    s3_server.gate.cut_next(2)
    with track() as stats:
        got = run(store.get_range_async(path, start=1000, end=200_000))
    assert got == storage_blob[1000:200_000]
    assert stats.retries == 2
    s3_server.gate.stall_next(1, 1.5)
    with track() as stats:
        assert run(store.get_range_async(path, start=7, end=70_007)) == storage_blob[7:70_007]
    assert stats.retries == 1
    # Cut on every attempt: a clear failure naming the object and range, never short bytes.
    s3_server.gate.cut_next(5)
    with pytest.raises(ReadFailedError, match=f"bytes 0-99999 of s3://{s3_server.bucket}/{NAME}"):
        run(store.get_range_async(path, start=0, end=100_000))


def test_s3_requests_carry_valid_signatures(s3_server: Any, storage_blob: bytes) -> None:
    # Keys whose encoding differs between the wire and a naive signature.
    names = ["dir/a b+c.tif", "dir/ü=%?#.tif", "dir//x~y.tif"]
    for name in names:
        s3_server.upload(name, storage_blob)
    options = {**s3_server.storage_options, "token": "session-token/+=", "requester_pays": True}
    store = S3Store(**options)
    for name in names:
        path = f"{s3_server.bucket}/{name}"
        assert run(store.get_range_async(path, start=5, end=900)) == storage_blob[5:900]
        assert run(store.head_async(path))["size"] == len(storage_blob)
    assert len(s3_server.gate.seen) == 2 * len(names)
    for headers in s3_server.gate.seen:
        assert headers["x-amz-request-payer"] == "requester"
        assert headers["x-amz-security-token"] == "session-token/+="
        signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        assert {"host", "x-amz-date", "x-amz-request-payer", "x-amz-security-token"} <= set(signed)


def test_s3_gate_refuses_a_wrong_signature(s3_server: Any, storage_blob: bytes) -> None:
    # The check is real: the right key with another secret is refused.
    s3_server.upload(NAME, storage_blob)
    store = S3Store(**{**s3_server.storage_options, "secret": "not-the-secret"}, **FAST)
    with pytest.raises(PermissionDeniedError, match="SignatureDoesNotMatch"):
        run(store.get_range_async(f"{s3_server.bucket}/{NAME}", start=0, end=10))


def test_s3_bucket_in_another_region_is_followed(s3_server: Any, storage_blob: bytes) -> None:
    s3_server.upload(NAME, storage_blob)
    s3_server.gate.bucket_regions[s3_server.bucket] = "eu-central-1"
    store = S3Store(endpoint_url=s3_server.endpoint_url, key="testing", secret="testing")
    path = f"{s3_server.bucket}/{NAME}"

    async def twice() -> list[bytes]:
        return [await store.get_range_async(path, start=0, end=64) for _ in range(2)]

    with track() as stats:
        assert run(twice()) == [storage_blob[:64]] * 2
    # One redirect for the first read; the second goes to the bucket's region at once.
    regions = [h["authorization"].split("/")[2] for h in s3_server.gate.seen]
    assert regions == ["us-east-1", "eu-central-1", "eu-central-1"]
    assert stats.retries == 0


@pytest.mark.parametrize(
    ("bucket", "key", "region", "endpoint", "style"),
    [
        ("sentinel-cogs", "a b/c+d~e.tif", "us-west-2", None, "auto"),
        ("my.dotted.bucket", "k/x.tif", "eu-central-1", None, "auto"),
        ("sentinel-cogs", "k/x.tif", "eu-west-1", None, "path"),
        ("bkt", "k/ü.tif", "us-east-1", "http://127.0.0.1:9000", "auto"),
        ("bkt", "k/x.tif", "us-east-1", "https://minio.example:9000", "virtual"),
        ("data", "k.tif", "cn-north-1", None, "auto"),
    ],
)
def test_s3_object_urls_are_botocores(
    bucket: str, key: str, region: str, endpoint: str | None, style: str
) -> None:
    import botocore.session
    from botocore.config import Config

    from xarray_rasteret.storage._s3_addressing import object_url

    client = botocore.session.get_session().create_client(
        "s3", region_name=region, endpoint_url=endpoint, aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(s3={"addressing_style": style} if style != "auto" else {}),
    )
    sent: list[str] = []

    def capture(request: Any, **_: Any) -> Any:
        sent.append(request.url)
        raise RuntimeError("captured")

    client.meta.events.register("before-send.s3.GetObject", capture)
    with pytest.raises(RuntimeError, match="captured"):
        client.get_object(Bucket=bucket, Key=key, Range="bytes=0-9")
    got = object_url(bucket, key, region=region, endpoint_url=endpoint, addressing_style=style)
    assert got == sent[0].split("?")[0]


def test_s3_without_credentials_says_how_to_give_them(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    store = S3Store(endpoint_url=s3_server.endpoint_url, **FAST)
    with track() as stats:
        with pytest.raises(PermissionDeniedError, match="no AWS credentials found.*anon=True"):
            run(store.get_range_async(f"{s3_server.bucket}/{NAME}", start=0, end=10))
    assert stats.retries == 0 and s3_server.gate.seen == []


def test_s3_tls_verification_follows_botocores_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ssl

    import certifi

    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    assert S3Store()._ssl() is True
    assert S3Store(client_kwargs={"verify": False})._ssl() is False
    monkeypatch.setenv("AWS_CA_BUNDLE", certifi.where())
    assert isinstance(S3Store()._ssl(), ssl.SSLContext)
    assert S3Store(client_kwargs={"verify": False})._ssl() is False
    with pytest.raises(ReadFailedError, match=r"cannot load the CA bundle .*no-such-bundle.pem"):
        S3Store(client_kwargs={"verify": str(tmp_path / "no-such-bundle.pem")})._ssl()


def test_s3_store_options_are_checked() -> None:
    with pytest.raises(ValueError, match="client_kwargs"):
        S3Store(client_kwargs={"config": object()})
    with pytest.raises(ValueError, match="key and secret"):
        S3Store(key="only-the-key")
    with pytest.raises(ValueError, match="a token needs both"):
        S3Store(token="only-a-token")
    with pytest.raises(ValueError, match="addressing_style"):
        S3Store(addressing_style="sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="access point"):
        arn = "arn:aws:s3:us-east-1:1:accesspoint/x/k"
        run(S3Store(anon=True).get_range_async(arn, start=0, end=1))


# --------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("href", "options", "kind", "path", "region"),
    [
        ("/data/a.tif", None, LocalStore, "/data/a.tif", None),
        ("data/a.tif", None, LocalStore, "data/a.tif", None),
        ("file:///data/a%20b.tif", None, LocalStore, "/data/a b.tif", None),
        ("s3://bucket/dir/a.tif", None, S3Store, "bucket/dir/a.tif", None),
        ("https://example.com/dir/a.tif", None, HTTPStore, "https://example.com/dir/a.tif", None),
        ("http://127.0.0.1:8000/a.tif", None, HTTPStore, "http://127.0.0.1:8000/a.tif", None),
        ("https://bkt.s3.amazonaws.com/dir/a.tif", None, S3Store, "bkt/dir/a.tif", None),
        (
            "https://bkt.s3.us-west-2.amazonaws.com/a.tif",
            None,
            S3Store,
            "bkt/a.tif",
            "us-west-2",
        ),
        (
            "https://my.bkt.s3.eu-west-1.amazonaws.com/a.tif",
            None,
            S3Store,
            "my.bkt/a.tif",
            "eu-west-1",
        ),
        ("https://bkt.s3-us-west-2.amazonaws.com/a.tif", None, S3Store, "bkt/a.tif", "us-west-2"),
        (
            "https://bkt.s3.dualstack.us-east-2.amazonaws.com/a.tif",
            None,
            S3Store,
            "bkt/a.tif",
            "us-east-2",
        ),
        ("https://s3.us-west-2.amazonaws.com/bkt/a.tif", None, S3Store, "bkt/a.tif", "us-west-2"),
        ("https://s3.amazonaws.com/bkt/a.tif", None, S3Store, "bkt/a.tif", None),
        (
            "https://bkt.s3-website-us-east-1.amazonaws.com/a.tif",
            None,
            HTTPStore,
            "https://bkt.s3-website-us-east-1.amazonaws.com/a.tif",
            None,
        ),
        (
            "https://bkt.s3.us-west-2.amazonaws.com/a.tif",
            {"s3_urls_as_http": True},
            HTTPStore,
            "https://bkt.s3.us-west-2.amazonaws.com/a.tif",
            None,
        ),
        (
            "https://bkt.s3.amazonaws.com/a.tif?X-Amz-Signature=abc",
            None,
            HTTPStore,
            "https://bkt.s3.amazonaws.com/a.tif?X-Amz-Signature=abc",
            None,
        ),
        (
            "http://minio:9000/bkt/dir/a.tif",
            {"endpoint_url": "http://minio:9000"},
            S3Store,
            "bkt/dir/a.tif",
            None,
        ),
    ],
)
def test_routing_table(
    href: str, options: dict[str, Any] | None, kind: type, path: str, region: str | None
) -> None:
    store, got = resolve_store(href, storage_options=options)
    assert isinstance(store, kind)
    assert got == path
    if isinstance(store, S3Store):
        assert store.region_name == region


def test_routing_caches_stores_per_options() -> None:
    a, _ = resolve_store("https://example.com/a.tif", storage_options={"timeout": 5})
    b, _ = resolve_store("https://example.com/b.tif", storage_options={"timeout": 5})
    c, _ = resolve_store("https://example.com/b.tif", storage_options={"timeout": 6})
    assert a is b and a is not c
    s1, _ = resolve_store("s3://x/a", storage_options={"anon": True, "headers": {"A": "1"}})
    s2, _ = resolve_store("s3://y/b", storage_options={"anon": True})
    assert s1 is s2  # options of another kind do not split the cache


def test_routing_rejects_unknown_options_and_schemes() -> None:
    with pytest.raises(TypeError, match="unknown storage_options"):
        resolve_store("s3://b/k", storage_options={"anonymous": True})
    with pytest.raises(ValueError, match="scheme"):
        resolve_store("ftp://host/a.tif")


def test_backend_paths_for_obstore_stores(tmp_path: Path) -> None:
    local = obstore.store.LocalStore(tmp_path)
    assert resolve_store(str(tmp_path / "d" / "a.tif"), backend=local)[1] == "d/a.tif"
    assert resolve_store("d/a.tif", backend=local)[1] == "d/a.tif"
    with pytest.raises(ValueError, match="not under"):
        resolve_store("/elsewhere/a.tif", backend=local)
    http = obstore.store.HTTPStore.from_url("https://example.com/data/")
    assert resolve_store("https://example.com/data/x/a.tif", backend=http)[1] == "x/a.tif"
    s3 = obstore.store.S3Store("bkt", prefix="p", skip_signature=True, region="us-west-2")
    assert resolve_store("s3://bkt/p/a.tif", backend=s3)[1] == "a.tif"
    assert resolve_store("https://bkt.s3.us-west-2.amazonaws.com/p/a.tif", backend=s3)[1] == "a.tif"
    with pytest.raises(ValueError, match="bucket"):
        resolve_store("s3://other/p/a.tif", backend=s3)

    class Custom:
        async def get_range_async(self, path: str, **kw: Any) -> bytes:
            return b""

        async def get_ranges_async(self, path: str, **kw: Any) -> list[bytes]:
            return []

    custom = Custom()
    assert resolve_store("s3://bkt/a.tif", backend=custom) == (custom, "s3://bkt/a.tif")


def test_stores_pickle_without_sessions(blob_url: str) -> None:
    store: Callable[[], Any]
    for store in (HTTPStore, lambda: S3Store(anon=True)):
        s = store()
        clone = pickle.loads(pickle.dumps(s))
        assert type(clone) is type(s) and clone.policy == s.policy
