"""Azure Blob Storage: az://, abfs:// and blob.core.windows.net URLs on an Azure-shaped server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from cloud_servers import AzureServer, assert_pixels_equal, write_scenes
from xarray_rasteret._sync import sync
from xarray_rasteret.errors import ObjectNotFoundError, PermissionDeniedError
from xarray_rasteret.storage import AzureStore, object_info, redact_url, resolve_store
from xarray_rasteret.storage.azure import API_VERSION

BEARER = "eyJAZUREBEARERsecret"
ACCOUNT = AzureServer.account


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AzureServer, list[str]]]:
    root = tmp_path_factory.mktemp("azure")
    names = write_scenes(root / ACCOUNT / "open" / "cogs")
    write_scenes(root / ACCOUNT / "private" / "cogs")
    with AzureServer(root, public={"open"}, bearer=BEARER) as server:
        yield server, names


def _local(server: AzureServer, container: str, names: list[str]) -> list[Path]:
    return [Path(server.root) / ACCOUNT / container / "cogs" / n for n in names]


def _in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def test_public_container_reads_anonymously(azure: tuple[AzureServer, list[str]]) -> None:
    server, names = azure
    server.reset()
    assert_pixels_equal([f"az://open/cogs/{n}" for n in names], _local(server, "open", names),
                        {"endpoint_url": server.endpoint_url, "account_name": ACCOUNT})  # fmt: skip
    assert server.seen
    assert {s.header("x-ms-version") for s in server.seen} == {API_VERSION}
    assert all(s.header("Authorization") is None for s in server.seen)


@pytest.mark.parametrize(
    ("form", "options"),
    [
        ("az://private/cogs/{}", {"sas_token": "?{sas}", "azure_storage_account_name": ACCOUNT}),
        (f"abfs://private@{ACCOUNT}.dfs.core.windows.net/cogs/{{}}",
         {"azure_storage_sas_token": "{sas}"}),
        (f"https://{ACCOUNT}.blob.core.windows.net/private/cogs/{{}}?{{sas}}", {}),
        ("az://private/cogs/{}", {"azure_storage_token": BEARER, "account_name": ACCOUNT}),
    ],
)  # fmt: skip
def test_private_container_reads_with_sas_or_token(
    azure: tuple[AzureServer, list[str]], form: str, options: dict[str, str]
) -> None:
    server, names = azure
    server.reset()
    sas = server.sas("private", expiry=_in_an_hour())
    hrefs = [form.format(n, sas=sas) for n in names]
    opts = {k: v.format(sas=sas) for k, v in options.items()}
    assert_pixels_equal(hrefs, _local(server, "private", names),
                        {**opts, "azure_storage_endpoint": server.endpoint_url})  # fmt: skip
    assert all(s.path.startswith(f"/{ACCOUNT}/private/cogs/") for s in server.seen)
    tokens = {s.header("Authorization") for s in server.seen}
    assert tokens == ({f"Bearer {BEARER}"} if "azure_storage_token" in opts else {None})


def test_a_blob_sas_in_the_href_wins_over_the_option(azure: tuple[AzureServer, list[str]]) -> None:
    server, names = azure
    own = server.sas("private", f"cogs/{names[0]}", expiry=_in_an_hour())
    other = server.sas("open", expiry=_in_an_hour())  # valid, but not for this container
    options = {"endpoint_url": server.endpoint_url, "account_name": ACCOUNT, "sas_token": other}
    store, path = resolve_store(f"az://private/cogs/{names[0]}?{own}", storage_options=options)
    data = sync(store.get_range_async(path, start=0, end=64))
    assert data == _local(server, "private", names)[0].read_bytes()[:64]


def test_refusals_name_the_blob_and_never_the_signature(
    azure: tuple[AzureServer, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    server, names = azure
    caplog.set_level(logging.DEBUG)
    expired = server.sas("private", expiry=datetime.now(UTC) - timedelta(minutes=5))
    no_read = server.sas("private", expiry=_in_an_hour(), sp="l")
    forged = server.sas("open", expiry=_in_an_hour())
    blob = f"{server.endpoint_url}/{ACCOUNT}/private/cogs/{names[0]}"
    base = {"endpoint_url": server.endpoint_url, "account_name": ACCOUNT, "max_attempts": 1}
    cases = [
        ({}, "private", ObjectNotFoundError, r"private/cogs/s0_\S+ does not exist \(HTTP 404 "
         r"ResourceNotFound\).*a private container answers anonymous reads with 404 too: pass "
         r"storage_options=\{'sas_token'"),
        ({}, "open", ObjectNotFoundError, r"open/cogs/nope\.tif does not exist \(HTTP 404 "
         r"BlobNotFound\)"),
        ({"sas_token": expired}, "private", PermissionDeniedError, r"refused \(HTTP 403 "
         r"AuthenticationFailed\); the SAS token expired at 20\d\d-"),
        ({"sas_token": no_read}, "private", PermissionDeniedError,
         r"HTTP 403 AuthorizationPermissionMismatch\); check that the SAS token .* allows "
         r"reading \(sp=r\)"),
        ({"sas_token": forged}, "private", PermissionDeniedError,
         r"HTTP 403 AuthenticationFailed\); check that the SAS token"),
        ({"bearer_token": "not" + BEARER}, "private", PermissionDeniedError,
         r"HTTP 401 InvalidAuthenticationInfo"),
    ]  # fmt: skip
    for extra, container, error, message in cases:
        store, _ = resolve_store("az://c/b", storage_options={**base, **extra})
        name = (
            names[0] if error is not ObjectNotFoundError or container == "private" else "nope.tif"
        )
        path = f"{ACCOUNT}/{container}/cogs/{name}"
        for read in (store.get_range_async(path, start=0, end=10), object_info(store, path)):
            with pytest.raises(error, match=message) as caught:
                sync(read)
            text = str(caught.value)
            assert blob.rsplit("/", 3)[0] in text  # the endpoint and account are named
            for secret in (expired, no_read, forged):
                assert dict(parse_qsl(secret))["sig"] not in text
            assert BEARER not in text
    for secret in (expired, no_read, forged):
        assert dict(parse_qsl(secret))["sig"] not in caplog.text
    assert BEARER not in caplog.text
    # A SAS in an href never shows in a message either.
    url = f"https://{ACCOUNT}.blob.core.windows.net/private/a.tif?{expired}"
    assert redact_url(url) == f"https://{ACCOUNT}.blob.core.windows.net/private/a.tif?<redacted>"


def test_url_forms_and_option_checks() -> None:
    store, path = resolve_store(f"https://{ACCOUNT}.dfs.core.windows.net/c/a/b.tif")
    assert isinstance(store, AzureStore) and path == f"{ACCOUNT}/c/a/b.tif"
    assert store._target(path) == f"https://{ACCOUNT}.blob.core.windows.net/c/a/b.tif"
    store, path = resolve_store("azure://c/a.tif", storage_options={
        "account_name": "acct", "endpoint_url": "http://127.0.0.1:10000/acct"})  # fmt: skip
    assert store._target(path) == "http://127.0.0.1:10000/acct/c/a.tif"  # account not twice
    # az:// names are literal (as s3:// and gs:// keys); https:// URLs are percent-decoded.
    store, path = resolve_store("az://c/a b%20.tif", storage_options={"account_name": "acct"})
    assert store._target(path) == "https://acct.blob.core.windows.net/c/a%20b%2520.tif"
    assert resolve_store("https://acct.blob.core.windows.net/c/a%20b.tif")[1] == "acct/c/a b.tif"
    with pytest.raises(ValueError, match=r"'az://c/a\.tif' names no storage account: pass "
                       r"storage_options=\{'account_name'"):  # fmt: skip
        resolve_store("az://c/a.tif")
    with pytest.raises(ValueError, match=r"names no container and blob"):
        resolve_store("az://c", storage_options={"account_name": "acct"})
    with pytest.raises(ValueError, match=r"'account_name'\] must be an Azure storage account"):
        resolve_store("az://c/a.tif", storage_options={"account_name": "My_Account"})
    with pytest.raises(ValueError, match=r"'sas_token'\] must be a shared access signature"):
        resolve_store("az://c/a.tif", storage_options={"account_name": "a1b", "sas_token": "x"})
    with pytest.raises(ValueError, match=r"both 'sas_token' and 'bearer_token'"):
        resolve_store("az://c/a.tif", storage_options={
            "account_name": "a1b", "sas_token": "sig=x", "bearer_token": "t"})  # fmt: skip
    with pytest.raises(TypeError, match=r"\['azure_storage_account_key'\] is not supported: .*"
                       r"sas_token"):  # fmt: skip
        resolve_store("az://c/a.tif", storage_options={"azure_storage_account_key": "k"})


@pytest.mark.parametrize(
    ("alias", "ours"),
    [
        ("google_bearer_token", "bearer_token"),
        ("google_base_url", "endpoint_url"),
        ("azure_storage_account_name", "account_name"),
        ("azure_storage_sas_token", "sas_token"),
        ("azure_storage_sas_key", "sas_token"),
        ("sas_key", "sas_token"),
        ("azure_storage_token", "bearer_token"),
        ("azure_storage_endpoint", "endpoint_url"),
        ("azure_endpoint", "endpoint_url"),
    ],
)
def test_obstore_names_are_aliases(alias: str, ours: str) -> None:
    from xarray_rasteret.storage._router import ALIASES, canonical_options

    assert ALIASES[alias] == ours
    assert canonical_options({alias: "v"}) == {ours: "v"}
    with pytest.raises(TypeError, match=rf"give '{ours}' twice with different values"):
        canonical_options({alias: "v", ours: "w"})
