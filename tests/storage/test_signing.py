"""Read-time signing against a SAS token API and a blob server that checks the tokens.

Both run on 127.0.0.1 (tests/token_server.py); the collection holds plain hrefs,
every request is signed as it is made, a refused token is renewed once, and a
signer that keeps giving bad tokens fails naming the object, never the token.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr

import xarray_rasteret as xrr
from servers import RangeHTTPServer
from token_server import BLOBS, SASServers, rehost, signed_collection, write_blobs
from xarray_rasteret import data_sources
from xarray_rasteret.collection import Collection
from xarray_rasteret.data_sources import DataSource, PlanetaryComputerSigner, blob_container
from xarray_rasteret.errors import ObjectNotFoundError, PermissionDeniedError


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three dated one-band COGs at ``acct/cont/s{i}_B04.tif``."""
    return write_blobs(tmp_path_factory.mktemp("blobs"), width=200, height=120, seed=30,
                       blockxsize=64, blockysize=32)


def expected(root: Path) -> np.ndarray:
    out = []
    for i in range(3):
        with rasterio.open(root / BLOBS / f"s{i}_B04.tif") as r:
            out.append(r.read(1))
    return np.stack(out)


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    data_sources._tokens.clear()  # each test counts its own token requests
    yield
    data_sources._tokens.clear()


@pytest.fixture
def sas(root: Path) -> Iterator[SASServers]:
    with SASServers(root, lifetime=60.0) as servers:
        yield servers


def test_blob_container_of_azure_and_path_style_urls() -> None:
    assert blob_container("https://acc.blob.core.windows.net/c/a/b.tif") == ("acc", "c")
    assert blob_container("http://127.0.0.1:10000/devstoreaccount1/c/b.tif") == (
        "devstoreaccount1", "c",
    )
    assert blob_container("https://example.com/acc/c/b.tif") is None
    assert blob_container("https://acc.blob.core.windows.net/c") is None


def test_signer_fetches_once_caches_and_pickles_without_tokens(sas: SASServers) -> None:
    sign = PlanetaryComputerSigner(sas_api=sas.api_url)
    url = sas.blob_url(f"{BLOBS}/s0_B04.tif")
    signed = sign(url)
    assert signed.startswith(url + "?sv=") and "&sig=" in signed
    assert sign(sas.blob_url(f"{BLOBS}/s1_B04.tif")).endswith(signed.partition("?")[2])
    assert sas.issued.count == 1  # one token per (account, container), cached
    assert sign.cached(url) == signed
    assert sign("https://example.com/a.tif") == "https://example.com/a.tif"
    assert sign(signed) == signed  # already signed: unchanged
    blob = pickle.dumps(sign)
    assert b"sig=" not in blob and pickle.loads(blob) == sign
    assert "sig" not in repr(sign) and sas.api_url in repr(sign)


def test_engine_and_helpers_read_signed_urls_equal_rasterio(root: Path, sas: SASServers) -> None:
    col = signed_collection(root, sas)
    sign = PlanetaryComputerSigner(sas_api=sas.api_url)
    ds = xr.open_dataset(col, engine="rasteret", sign=sign)
    np.testing.assert_array_equal(ds.B04.values, expected(root))
    assert sas.issued.count == 1
    bounds = (600_100.0, 4_999_200.0, 600_900.0, 4_999_800.0)
    got = xrr.get_numpy(col, geometries=bounds, geometry_crs="EPSG:32633", bands=["B04"],
                        sign=sign)
    window = ds.B04.sel(x=slice(bounds[0], bounds[2]), y=slice(bounds[3], bounds[1]))
    np.testing.assert_array_equal(got, window.values)
    xa = xrr.get_xarray(col, geometries=bounds, geometry_crs="EPSG:32633", bands=["B04"],
                        sign=sign)
    np.testing.assert_array_equal(xa.B04.isel(geometry=0).values, window.values)
    point = shapely.Point(600_105.0, 4_999_795.0)
    table = xrr.sample_points(col, points=[point], geometry_crs="EPSG:32633", bands=["B04"],
                              sign=sign)
    assert table.column("value").to_pylist() == [float(v) for v in expected(root)[:, 20, 10]]
    # Nothing signed was kept: not in the collection, its Parquet, attrs or encoding.
    path = root.parent / "signed-col.parquet"
    col.to_parquet(path)
    for token in sas.issued.all_tokens():
        assert token.encode() not in path.read_bytes()
    assert "sig=" not in repr(ds.attrs) + repr(ds.B04.attrs) + repr(ds.B04.encoding)
    assert all("?" not in s.href for s in col.sources("B04"))


def test_unsigned_read_is_refused_naming_the_object(root: Path, sas: SASServers) -> None:
    col = signed_collection(root, sas)
    with pytest.raises(PermissionDeniedError, match=r"acct/cont/s0_B04\.tif.*refused"):
        xr.open_dataset(col, engine="rasteret").B04.isel(time=0).values


def test_revoked_token_is_renewed_once_and_the_read_succeeds(root: Path, sas: SASServers) -> None:
    col = signed_collection(root, sas)
    sign = PlanetaryComputerSigner(sas_api=sas.api_url)
    ds = xr.open_dataset(col, engine="rasteret", sign=sign)
    np.testing.assert_array_equal(ds.B04.isel(time=0).values, expected(root)[0])
    sas.issued.revoke_all()  # the cached token now fails before its expiry
    np.testing.assert_array_equal(ds.B04.values, expected(root))
    assert sas.issued.count == 2  # renewed once, by every request that was refused
    assert sas.issued.refused >= 1


def test_expired_token_is_renewed_before_use(root: Path) -> None:
    with SASServers(root, lifetime=0.4) as sas:
        col = signed_collection(root, sas)
        sign = PlanetaryComputerSigner(sas_api=sas.api_url)
        ds = xr.open_dataset(col, engine="rasteret", sign=sign)
        np.testing.assert_array_equal(ds.B04.isel(time=0).values, expected(root)[0])
        import time

        time.sleep(0.5)
        np.testing.assert_array_equal(ds.B04.isel(time=1).values, expected(root)[1])
        assert sas.issued.count == 2


def test_a_signer_giving_bad_tokens_fails_naming_the_object_not_the_token(
    root: Path, sas: SASServers, caplog: pytest.LogCaptureFixture
) -> None:
    col = signed_collection(root, sas)
    calls = []

    def forge(href: str) -> str:
        calls.append(href)
        return f"{href}?sv=2024&code=forged-secret-{len(calls)}-value&sig=forged-sig-value"

    caplog.set_level(logging.DEBUG)
    ds = xr.open_dataset(col, engine="rasteret", sign=forge)
    with pytest.raises(PermissionDeniedError) as info:
        ds.B04.isel(time=0, x=slice(0, 10), y=slice(0, 10)).values
    message = str(info.value)
    assert "acct/cont/s0_B04.tif" in message and "again after signing it anew" in message
    assert "forged" not in message and "forged" not in caplog.text
    assert "forged" not in "".join(str(n) for n in getattr(info.value, "__notes__", []))
    assert calls == [calls[0]] * 2  # signed, refused, signed anew, refused: no more


def test_sign_must_be_callable_and_return_a_string(root: Path, sas: SASServers) -> None:
    col = signed_collection(root, sas)
    with pytest.raises(TypeError, match="sign must be a callable"):
        xr.open_dataset(col, engine="rasteret", sign="token")
    ds = xr.open_dataset(col, engine="rasteret", sign=lambda href: None)
    with pytest.raises(TypeError, match=r"returned NoneType for .*s0_B04\.tif.*as a str"):
        ds.B04.isel(time=0).values


def test_subscription_key_goes_to_the_token_api(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SASServers(root, key="the-subscription-key") as sas:
        col = signed_collection(root, sas)
        sign = PlanetaryComputerSigner(sas_api=sas.api_url)
        monkeypatch.delenv("PC_SDK_SUBSCRIPTION_KEY", raising=False)
        ds = xr.open_dataset(col, engine="rasteret", sign=sign)
        with pytest.raises(PermissionDeniedError, match="PC_SDK_SUBSCRIPTION_KEY") as info:
            ds.B04.isel(time=0).values
        assert "/token/acct/cont" in str(info.value)
        monkeypatch.setenv("PC_SDK_SUBSCRIPTION_KEY", "the-subscription-key")
        np.testing.assert_array_equal(ds.B04.isel(time=0).values, expected(root)[0])
        assert "the-subscription-key" not in repr(sign) + str(pickle.dumps(sign))


def test_token_api_failures_are_clear(root: Path) -> None:
    sign = PlanetaryComputerSigner(sas_api="http://127.0.0.1:9/api/sas/v1", max_attempts=1)
    with pytest.raises(OSError, match=r"no SAS token from http://127\.0\.0\.1:9/api/sas/v1/token"):
        sign("https://acc.blob.core.windows.net/c/a.tif")
    with pytest.raises(ValueError, match="sas_api='ftp://x'"):
        PlanetaryComputerSigner(sas_api="ftp://x")


def test_planetary_computer_data_sources_sign_with_the_configured_api(
    root: Path, sas: SASServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("sentinel-2-l2a/planetary-computer", "landsat-c2-l2/planetary-computer"):
        assert isinstance(data_sources.get(name).sign, PlanetaryComputerSigner)
    monkeypatch.setenv("PC_SDK_SAS_URL", f"{sas.api_url}/token")  # the SDK's own setting
    col = signed_collection(root, sas)
    ds = xr.open_dataset(
        col, engine="rasteret", bands=["B04"], data_source="sentinel-2-l2a/planetary-computer"
    )
    np.testing.assert_array_equal(ds.B04.values, expected(root))
    # A data source of one's own with a signer, and sign= overriding it.
    mine = DataSource("mine", sign=PlanetaryComputerSigner(sas_api=sas.api_url))
    got = xr.open_dataset(col, engine="rasteret", data_source=mine).B04.isel(time=2).values
    np.testing.assert_array_equal(got, expected(root)[2])
    with pytest.raises(PermissionDeniedError):
        xr.open_dataset(col, engine="rasteret", data_source=mine,
                        sign=lambda h: h + "?sig=bad").B04.isel(time=2).values


def test_a_signing_source_is_not_inferred_from_an_azure_host_alone() -> None:
    hrefs = ["https://someone.blob.core.windows.net/c/a.tif"]
    assert data_sources.infer([], hrefs) is None
    found = data_sources.infer(["sentinel-2-l2a"], hrefs)
    assert found is not None and found.name == "sentinel-2-l2a/planetary-computer"


def test_a_signed_query_the_stores_would_show_is_scrubbed(root: Path, sas: SASServers) -> None:
    col = signed_collection(root, sas)
    with RangeHTTPServer(root) as plain:  # no auth: a missing blob answers 404
        table = rehost(col.table, [(f"{sas.blob_url()}{BLOBS}/s0", f"{plain.url()}{BLOBS}/gone")])
        gone = Collection(table)
        ds = xr.open_dataset(gone, engine="rasteret", sign=lambda h: f"{h}?code=secret-value-123")
        with pytest.raises(ObjectNotFoundError, match=r"gone_B04\.tif") as info:
            ds.B04.isel(time=0).values
    assert "secret-value-123" not in str(info.value)
    assert "<redacted>" in str(info.value)  # the store showed the query; it was scrubbed
