"""Google Cloud Storage: gs:// and storage.googleapis.com URLs against a GCS-shaped server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_servers import GCSServer, assert_pixels_equal, write_scenes
from xarray_rasteret._sync import sync
from xarray_rasteret.errors import ObjectNotFoundError, PermissionDeniedError
from xarray_rasteret.storage import GCSStore, HTTPStore, object_info, resolve_store
from xarray_rasteret.storage.gcs import parse_gcs_url

TOKEN = "ya29.GCSTOKENsecret0123"


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GCSServer, list[str]]]:
    root = tmp_path_factory.mktemp("gcs")
    names = write_scenes(root / "open-data" / "cogs")
    write_scenes(root / "private-data" / "cogs")
    with GCSServer(root, token=TOKEN, public={"open-data"}) as server:
        yield server, names


def test_public_bucket_reads_anonymously_as_rasterio(gcs: tuple[GCSServer, list[str]]) -> None:
    server, names = gcs
    server.reset()
    root = Path(server.root)
    assert_pixels_equal(
        [f"gs://open-data/cogs/{n}" for n in names],
        [root / "open-data" / "cogs" / n for n in names],
        {"endpoint_url": server.url()},
    )
    assert server.seen and all(s.header("Authorization") is None for s in server.seen)


@pytest.mark.parametrize(
    ("form", "token_key"),
    [
        ("gs://private-data/cogs/{}", "bearer_token"),
        ("https://storage.googleapis.com/private-data/cogs/{}", "google_bearer_token"),
        ("https://private-data.storage.googleapis.com/cogs/{}", "bearer_token"),
    ],
)
def test_private_bucket_reads_with_a_bearer_token(
    gcs: tuple[GCSServer, list[str]], form: str, token_key: str
) -> None:
    server, names = gcs
    server.reset()
    root = Path(server.root)
    assert_pixels_equal(
        [form.format(n) for n in names],
        [root / "private-data" / "cogs" / n for n in names],
        {"google_base_url": server.url(), token_key: TOKEN},
    )
    assert {s.header("Authorization") for s in server.seen} == {f"Bearer {TOKEN}"}
    assert all(s.path.startswith("/private-data/cogs/") for s in server.seen)  # XML API paths


def test_size_and_etag_from_a_ranged_get(gcs: tuple[GCSServer, list[str]]) -> None:
    server, names = gcs
    store, path = resolve_store(f"gs://open-data/cogs/{names[0]}",
                                storage_options={"endpoint_url": server.url()})  # fmt: skip
    info = sync(object_info(store, path))
    assert info.size == (Path(server.root) / "open-data" / "cogs" / names[0]).stat().st_size
    assert info.etag


def test_refusals_name_the_object_and_never_the_token(
    gcs: tuple[GCSServer, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    server, names = gcs
    caplog.set_level(logging.DEBUG)
    fast = {"endpoint_url": server.url(), "max_attempts": 1}
    anon, _ = resolve_store("gs://x/y", storage_options=fast)
    signed, _ = resolve_store("gs://x/y", storage_options={**fast, "bearer_token": "wrong" + TOKEN})
    cases = [
        (anon, "open-data/cogs/nope.tif", ObjectNotFoundError, r"gs://open-data/cogs/nope\.tif "
         r"does not exist \(HTTP 404\)"),
        (anon, "no-bucket/a.tif", ObjectNotFoundError, r"gs://no-bucket/a\.tif does not exist"),
        (anon, f"private-data/cogs/{names[0]}", PermissionDeniedError,
         r"gs://private-data/cogs/s0_\S+ was refused \(HTTP 403 AccessDenied\); the object is "
         r"not public: pass an OAuth2 access token as storage_options=\{'bearer_token'"),
        (signed, f"private-data/cogs/{names[0]}", PermissionDeniedError,
         r"refused \(HTTP 401 AuthenticationRequired\); check the bearer_token \(access tokens "
         r"expire"),
    ]  # fmt: skip
    for store, path, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            sync(store.get_range_async(path, start=0, end=100))
        assert TOKEN not in str(caught.value)
        with pytest.raises(error, match=message):
            sync(object_info(store, path))
    assert TOKEN not in caplog.text and TOKEN not in repr(signed)


def test_url_forms() -> None:
    media = "https://storage.googleapis.com/storage/v1/b/bkt/o/a%2Fb.tif?alt=media"
    assert parse_gcs_url(media) == ("bkt", "a/b.tif")
    assert parse_gcs_url(media.replace("/storage/v1", "/download/storage/v1")) == ("bkt", "a/b.tif")
    assert parse_gcs_url("https://storage.googleapis.com/storage/v1/b/bkt/o/a.tif") is None
    assert parse_gcs_url("https://example.com/bkt/a.tif") is None
    assert GCSStore()._target("gs://bkt/a b/c+d.tif") == (
        "https://storage.googleapis.com/bkt/a%20b/c%2Bd.tif"
    )
    # Signed URLs and URLs with a query of their own (a generation) are read as given.
    for url in ("https://storage.googleapis.com/bkt/a.tif?X-Goog-Signature=abc&X-Goog-Date=1",
                "https://storage.googleapis.com/bkt/a.tif?generation=1700000000000"):  # fmt: skip
        store, path = resolve_store(url)
        assert isinstance(store, HTTPStore) and not isinstance(store, GCSStore) and path == url
    store, path = resolve_store("gcs://bkt/k.tif")
    assert isinstance(store, GCSStore) and path == "bkt/k.tif"


def test_bad_options_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'endpoint_url'\] for gs:// must be an http\(s\)://"):
        resolve_store("gs://b/k", storage_options={"endpoint_url": "localhost:4443"})
    with pytest.raises(ValueError, match=r"'bearer_token'\] must be a non-empty string"):
        resolve_store("gs://b/k", storage_options={"bearer_token": ""})
    with pytest.raises(ValueError, match=r"both 'bearer_token' and an Authorization header"):
        resolve_store(
            "gs://b/k",
            storage_options={"bearer_token": "t", "headers": {"authorization": "Bearer u"}},
        )
    with pytest.raises(TypeError, match=r"\['google_service_account'\] is not supported: .*"
                       r"bearer_token"):  # fmt: skip
        resolve_store("gs://b/k", storage_options={"google_service_account": "/sa.json"})
