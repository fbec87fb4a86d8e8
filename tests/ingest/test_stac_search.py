"""build() from a STAC API search (pystac-client against tests/stac_api.py), catalogue ids,
and on_error="skip".

The embedded sample's four items are served by a STAC API on 127.0.0.1, their COGs
by the range server; relative asset hrefs resolve against each item's self link
(on the range server). Builds from a search are compared with builds of the same
items passed in, and pixels with rasterio's reads of the local files.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr

import xarray_rasteret as xrr
from stac_api import StacAPIServer
from xarray_rasteret import catalogues
from xarray_rasteret.errors import NotATiffError, ObjectNotFoundError, RasteretWarning

BANDS = ["B04", "B08"]
IDS = [f"S2X_33TWN_202405{d}_L2A" for d in ("03", "08", "13", "18")]


def _items(http_server: Any, sample_folder: Path, keys: dict[str, str] | None = None) -> list[Any]:
    """The sample's items, in collection sentinel-2-l2a, self links on the range server."""
    shutil.copytree(sample_folder, http_server.root, dirs_exist_ok=True)
    features = json.loads((sample_folder / "items.json").read_text())["features"]
    for f in features:
        f["collection"] = "sentinel-2-l2a"
        f["links"] = [{"rel": "self", "href": http_server.url(f"{f['id']}.json")}]
        if keys:
            f["assets"] = {keys.get(k, k): a for k, a in f["assets"].items()}
    return features


@pytest.fixture
def items(http_server: Any, sample_folder: Path) -> list[Any]:
    return _items(http_server, sample_folder)


@pytest.fixture
def api(items: list[Any]) -> Iterator[StacAPIServer]:
    with StacAPIServer(items) as server:
        yield server


def _ids(coll: Any) -> list[str]:
    return sorted(coll.table.column("id").to_pylist())


def _pixels(coll: Any, folder: Path, band: str = "B04") -> dict[str, np.ndarray]:
    """Each record's full band, read through the engine, by record id."""
    path = folder / f"built-{len(list(folder.glob('built-*')))}.parquet"
    coll.to_parquet(path)
    with xr.open_dataset(path, engine="rasteret", bands=[band]) as ds:
        ids = coll.table.column("id").to_pylist()
        order = np.argsort(np.asarray(coll.datetimes))
        return {ids[i]: ds[band].isel(time=t).values for t, i in enumerate(order)}


def _rasterio(folder: Path, record_id: str, band: str = "B04") -> np.ndarray:
    with rasterio.open(folder / f"{record_id}_{band}.tif") as src:
        return src.read(1)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_search_builds_what_its_items_build_page_by_page(
    api: StacAPIServer, items: list[Any], sample_folder: Path, tmp_path: Path, method: str
) -> None:
    got = xrr.build(
        stac_api=api.url(),
        collections=["sentinel-2-l2a"],
        bands=BANDS,
        stac_options={"limit": 1, "method": method},
    )
    # pystac-client followed the next links: one request per item, then none past the end.
    assert api.searches() == [(method, None), (method, "1"), (method, "2"), (method, "3")]
    assert api.requests[0][:2] == ("GET", "/")  # Client.open read the landing page first
    assert all(a.startswith("python-requests/") for a in api.agents), api.agents
    want = xrr.build(items, bands=BANDS)
    assert got.table.equals(want.table)
    assert _ids(got) == IDS
    hrefs = [s.href for s in got.sources("B08")]
    assert hrefs == [s.href for s in want.sources("B08")]
    # Relative hrefs resolved against each item's self link, on the range server.
    assert hrefs[0] == api_href(items, "S2X_33TWN_20240503_L2A_B08.tif")
    assert [s.levels[0].tile_offsets.tolist() for s in got.sources("B04")] == [
        s.levels[0].tile_offsets.tolist() for s in want.sources("B04")
    ]  # band metadata (all of it is in the equal tables too)
    read = _pixels(got, tmp_path)
    assert sorted(read) == IDS
    for rid, pixels in read.items():
        np.testing.assert_array_equal(pixels, _rasterio(sample_folder, rid))


def api_href(items: list[Any], name: str) -> str:
    base = items[0]["links"][0]["href"].rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ({"datetime": "2024-05-05/2024-05-15"}, IDS[1:3]),
        ({"datetime": "2024-05-10/.."}, IDS[2:]),
        ({"datetime": ("2024-05-08", None)}, IDS[1:]),
        ({"date_range": ("2024-05-01", "2024-05-08")}, IDS[:2]),
        ({"query": {"eo:cloud_cover": {"lt": 20}}}, [IDS[0], IDS[2], IDS[3]]),
        ({"query": {"eo:cloud_cover": {"gt": 10, "lt": 20}}}, [IDS[2]]),
        (
            {
                "filter": {
                    "op": "and",
                    "args": [
                        {"op": "<=", "args": [{"property": "eo:cloud_cover"}, 12.25]},
                        {"op": ">", "args": [{"property": "eo:cloud_cover"}, 1]},
                    ],
                }
            },
            [IDS[0], IDS[2]],
        ),
        ({"filter": {"op": "=", "args": [{"property": "eo:cloud_cover"}, 41.0]}}, [IDS[1]]),
        (
            {
                "filter": {
                    "op": "and",
                    "args": [
                        {
                            "op": "s_intersects",
                            "args": [
                                {"property": "geometry"},
                                {"type": "Point", "coordinates": [16.3, 45.12]},
                            ],
                        },
                        {"op": "<", "args": [{"property": "eo:cloud_cover"}, 1]},
                    ],
                }
            },
            [IDS[3]],
        ),
        ({"bbox": (16.30, 45.12, 16.31, 45.13), "max_items": 2}, IDS[:2]),
    ],
)
def test_search_keywords_narrow_the_items(
    api: StacAPIServer, search: dict[str, Any], expected: list[str]
) -> None:
    got = xrr.build(stac_api=api.url(), collections="sentinel-2-l2a", bands=["B04"], **search)
    assert _ids(got) == expected


def test_max_items_stops_paging(api: StacAPIServer) -> None:
    got = xrr.build(stac_api=api.url(), bands=["B04"], max_items=2, stac_options={"limit": 1})
    assert _ids(got) == IDS[:2]
    assert [t for _, t in api.searches()] == [None, "1"]


def test_a_search_that_finds_nothing_says_so(api: StacAPIServer) -> None:
    with pytest.raises(
        ValueError, match=r"found no items for .*'bbox': \[0\.0, 0\.0, 1\.0, 1\.0\]"
    ):
        xrr.build(stac_api=api.url(), bbox=(0, 0, 1, 1))


def test_a_catalogue_id_searches_with_its_band_codes(
    http_server: Any, sample_folder: Path, tmp_path: Path
) -> None:
    # Assets named as on Earth Search; the catalogue maps its codes onto them.
    items = _items(http_server, sample_folder, keys={"B04": "red", "B08": "nir"})
    with StacAPIServer(items) as api:
        got = xrr.build(
            "earthsearch/sentinel-2-l2a",
            stac_api=api.url(),
            date_range=("2024-05-01", "2024-05-13"),
            query={"eo:cloud_cover": {"lt": 20}, "max_items": 5},  # rasteret's max_items
        )
        assert got.bands == ["B04", "B08"]
        assert _ids(got) == [IDS[0], IDS[2]]
        by_key = xrr.build("earthsearch/sentinel-2-l2a", stac_api=api.url(), bands=["nir"])
        assert by_key.bands == ["B08"]
        with pytest.raises(ValueError, match=r"band 'B99' is not in catalogue .*'B04'"):
            xrr.build("earthsearch/sentinel-2-l2a", stac_api=api.url(), bands=["B99"])
        with pytest.raises(ValueError, match="drop collections="):
            xrr.build("earthsearch/sentinel-2-l2a", stac_api=api.url(), collections=["x"])
    read = _pixels(got, tmp_path, "B08")
    np.testing.assert_array_equal(read[IDS[2]], _rasterio(sample_folder, IDS[2], "B08"))


def test_a_registered_catalogue_rewrites_its_hrefs(
    http_server: Any, sample_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogues, "_REGISTRY", dict(catalogues._REGISTRY))
    items = _items(http_server, sample_folder)
    for f in items:
        for a in f["assets"].values():
            a["href"] = "https://mirror.invalid/cogs/" + a["href"][2:]
    with StacAPIServer(items) as api:
        catalogues.register(
            catalogues.Catalogue(
                "acme/s2",
                stac_api=api.url(),
                collection="sentinel-2-l2a",
                href_prefixes={"https://mirror.invalid/cogs/": http_server.url()},
            )
        )
        with pytest.raises(ValueError, match="registered already; pass replace=True"):
            catalogues.register(catalogues.get("acme/s2"))
        got = xrr.build("acme/s2", bands=["B04"], max_items=1)
    assert got.sources("B04")[0].href == http_server.url(f"{IDS[0]}_B04.tif")


def test_earth_search_landsat_reads_the_requester_pays_bucket() -> None:
    from xarray_rasteret.ingest import _search

    search = _search.plan("earthsearch/landsat-c2-l2", None, {"bbox": (16, 45, 17, 46)})
    assert search is not None and search.catalogue is not None
    assert search.url == "https://earth-search.aws.element84.com/v1"
    assert search.params["collections"] == ["landsat-c2-l2"]
    portal = "https://landsatlook.usgs.gov/data/collection02/level-2/x_SR_B4.TIF"
    item = {"id": "L", "assets": {"red": {"href": portal}, "thumbnail": {"href": "t.png"}}}
    items, bands = _search._coded([item], search.catalogue, ["red"])
    assert bands == ["B4"]
    assert items[0]["assets"] == {
        "B4": {"href": "s3://usgs-landsat/collection02/level-2/x_SR_B4.TIF"}
    }
    # The catalogue's defaults sit under the caller's options (their names or boto3's).
    assert search.storage_options({"aws_region": "eu-west-1"}) == {
        "requester_pays": True,
        "region_name": "eu-west-1",
    }


def test_the_builtin_catalogues_name_registered_data_sources() -> None:
    from xarray_rasteret import data_sources

    ids = catalogues.registered()
    for cid in (
        "earthsearch/sentinel-2-l2a",
        "earthsearch/landsat-c2-l2",
        "pc/sentinel-2-l2a",
        "pc/landsat-c2-l2",
    ):
        assert cid in ids
        entry = catalogues.get(cid)
        assert entry.data_source in data_sources.registered(), cid
        assert entry.stac_api.startswith("https://")


# ---------------------------------------------------------------------------- errors


def test_without_pystac_client_the_message_says_what_to_install(
    api: StacAPIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pystac_client", None)  # import now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "xarray-rasteret\[stac\]"'):
        xrr.build(stac_api=api.url())


def test_an_unknown_catalogue_id_lists_the_ids() -> None:
    with pytest.raises(
        KeyError, match=r"unknown catalogue id 'earthsearch/sentinel2'.*'pc/sentinel-2-l2a'"
    ):
        xrr.build("earthsearch/sentinel2", bbox=(0, 0, 1, 1))
    with pytest.raises(KeyError, match="unknown catalogue id 'acme'"):
        xrr.build("acme", date_range=("2024-01-01", "2024-02-01"))


def test_source_and_stac_api_are_exclusive(items: list[Any], api: StacAPIServer) -> None:
    with pytest.raises(ValueError, match="source and stac_api= are exclusive"):
        xrr.build(items, stac_api=api.url())
    with pytest.raises(ValueError, match=r"bbox=, max_items= apply to a STAC API search"):
        xrr.build(items, bbox=(0, 0, 1, 1), max_items=3)
    with pytest.raises(ValueError, match="needs a source .* or stac_api="):
        xrr.build()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"datetime": "2024", "date_range": ("2024-01-01", "2024-02-01")}, "not both"),
        ({"date_range": "2024-01-01"}, r"date_range must be \(start, end\)"),
        ({"bbox": (0, 1, 1, 0)}, r"bbox must be \(west, south, east, north\)"),
        ({"max_items": 0}, "max_items must be a positive integer, got 0"),
        ({"stac_options": {"page_size": 3}}, r"unknown stac_options \['page_size'\]; valid keys"),
        ({"max_items": 2, "query": {"max_items": 3}}, r"max_items= and query\['max_items'\]"),
    ],
)
def test_bad_search_keywords_are_named(
    api: StacAPIServer, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        xrr.build(stac_api=api.url(), **kwargs)


def test_bad_search_values_of_other_kinds_are_named(api: StacAPIServer) -> None:
    with pytest.raises(TypeError, match="filter must be a CQL2-JSON dict or a CQL2-text string"):
        xrr.build(stac_api=api.url(), filter=["eo:cloud_cover<20"])
    with pytest.raises(ValueError, match="stac_api must be the URL of a STAC API root"):
        xrr.build(stac_api="")
    with pytest.raises(ValueError, match="a Catalogue needs an id, a stac_api URL and a"):
        catalogues.Catalogue("acme/x", stac_api="", collection="x")


def test_a_failing_search_names_the_api(api: StacAPIServer) -> None:
    bad = {"op": "like", "args": [{"property": "platform"}, "s%"]}
    with pytest.raises(Exception, match="unsupported CQL2 operator") as info:
        xrr.build(stac_api=api.url(), filter=bad)
    assert any(api.url() in note for note in info.value.__notes__)


# -------------------------------------------------------------------------- on_error


def test_on_error_skip_keeps_the_readable_records(
    http_server: Any, items: list[Any], sample_folder: Path, tmp_path: Path
) -> None:
    items[1]["assets"]["B08"]["href"] += "?sig=SECRET-TOKEN"  # a credential never shown
    http_server.set_faults(missing={f"{IDS[1]}_B08.tif"})
    # Junk under its own name: the range server's folder is shared by the session.
    (Path(http_server.root) / "junk_B04.tif").write_bytes(b"not a tiff at all" * 64)
    items[3]["assets"]["B04"]["href"] = "./junk_B04.tif"
    with pytest.warns(RasteretWarning, match=r"left out 2 of 4 records") as caught:
        got = xrr.build(items, bands=BANDS, on_error="skip")
    text = str(caught[0].message)
    assert f"record {IDS[1]!r}: {http_server.url(f'{IDS[1]}_B08.tif')}" in text
    assert "HTTP 404" in text and "NotATiffError" in text and f"record {IDS[3]!r}" in text
    assert "SECRET-TOKEN" not in text
    assert _ids(got) == [IDS[0], IDS[2]]
    assert [(rid, reason.split(":")[0]) for rid, _, reason in got.skipped] == [
        (IDS[1], "ObjectNotFoundError"),
        (IDS[3], "NotATiffError"),
    ]
    assert all("SECRET" not in href for _, href, _ in got.skipped)
    for rid, pixels in _pixels(got, tmp_path).items():
        np.testing.assert_array_equal(pixels, _rasterio(sample_folder, rid))
    # Written batch by batch, the same records are left out.
    with pytest.warns(RasteretWarning, match=r"left out 2 of 4 records"):
        out = xrr.build(
            items, bands=BANDS, on_error="skip", output=tmp_path / "b.parquet", batch_size=1
        )
    assert _ids(out) == [IDS[0], IDS[2]] and len(out.skipped) == 2


def test_on_error_skip_covers_refusals_and_failures_after_the_retries(
    http_server: Any, items: list[Any]
) -> None:
    http_server.set_faults(forbidden={f"{IDS[0]}_B04.tif"})
    items[2]["assets"]["B04"]["href"] = "http://127.0.0.1:9/nothing-listens-here.tif"
    with pytest.warns(RasteretWarning, match=r"left out 2 of 4 records"):
        got = xrr.build(
            items,
            bands=BANDS,
            on_error="skip",
            storage_options={"max_attempts": 2, "backoff": 0.01, "timeout": 5},
        )
    assert _ids(got) == [IDS[1], IDS[3]]
    reasons = {rid: reason.split(":")[0] for rid, _, reason in got.skipped}
    assert reasons == {IDS[0]: "PermissionDeniedError", IDS[2]: "ReadFailedError"}


def test_the_warning_names_ten_and_counts_the_rest() -> None:
    from xarray_rasteret.ingest._parse import warn_skipped

    skipped = [(f"r{i}", f"http://h/{i}.tif", "ObjectNotFoundError: gone") for i in range(12)]
    with pytest.warns(RasteretWarning) as caught:
        warn_skipped(skipped, 20)
    text = str(caught[0].message)
    assert text.startswith("build(on_error='skip') left out 12 of 20 records")
    assert "record 'r9': http://h/9.tif: ObjectNotFoundError: gone" in text
    assert "r10" not in text and "... and 2 more (all in the collection's .skipped)" in text


def test_on_error_raise_names_the_object(http_server: Any, items: list[Any]) -> None:
    http_server.set_faults(missing={f"{IDS[1]}_B08.tif"})
    with pytest.raises(ObjectNotFoundError, match=rf"{IDS[1]}_B08.tif is missing \(HTTP 404\)"):
        xrr.build(items, bands=BANDS)
    assert xrr.build(items[:1], bands=BANDS).skipped == []


def test_on_error_skip_with_nothing_readable_raises(http_server: Any, items: list[Any]) -> None:
    (Path(http_server.root) / "junk_B04.tif").write_bytes(b"junk" * 100)
    for f in items:
        f["assets"]["B04"]["href"] = "./junk_B04.tif"
    with pytest.raises(NotATiffError) as info:
        xrr.build(items, bands=["B04"], on_error="skip")
    assert "left out every record" in "".join(info.value.__notes__)


def test_an_invalid_on_error_is_refused(items: list[Any]) -> None:
    with pytest.raises(ValueError, match=r"on_error must be 'raise' .* or 'skip' .*not 'ignore'"):
        xrr.build(items, on_error="ignore")


def test_get_and_post_searches_filter_alike(api: StacAPIServer) -> None:
    search = {
        "datetime": "2024-05-04/2024-05-31",
        "query": {"eo:cloud_cover": {"lte": 41}},
        "filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]},
    }
    got = {
        method: _ids(
            xrr.build(stac_api=api.url(), bands=["B04"], stac_options={"method": method}, **search)
        )
        for method in ("GET", "POST")
    }
    assert got == {"GET": IDS[2:], "POST": IDS[2:]}
    assert {m for m, _ in api.searches()} == {"GET", "POST"}


# ---------------------------------------------------------------------- command line


def test_the_command_line_searches(
    api: StacAPIServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xarray_rasteret.cli import main

    out = tmp_path / "s2.parquet"
    code = main(
        ["build", "--stac-api", api.url(), "--collections", "sentinel-2-l2a", "--bands", "B04",
         "--datetime", "2024-05-05/..", "--query", '{"eo:cloud_cover": {"lt": 20}}',
         "--max-items", "5", "--no-progress", "-o", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "  records: 2" in capsys.readouterr().out
    assert _ids(xrr.load(out)) == IDS[2:]
    code = main(["build", "earthsearch/sentinel-2-l2a", "--stac-api", api.url(), "-o", str(out)])
    assert code == 1  # the sample's assets are not named as on Earth Search
    err = capsys.readouterr().err
    assert "none of the 4 items has an asset catalogue 'earthsearch/sentinel-2-l2a' maps" in err
    assert "the items' assets are ['B04', 'B08']" in err
    assert main(["build", "items.json", "--bbox", "0", "0", "1", "1", "-o", str(out)]) == 1
    assert "--bbox applies to a STAC API search" in capsys.readouterr().err
    assert main(["build", "-o", str(out)]) == 1
    assert "build needs a SOURCE, or --stac-api URL" in capsys.readouterr().err
    assert main(["build", "a.json", "b.json", "--stac-api", api.url(), "-o", str(out)]) == 1
    assert "a search takes at most one source, a catalogue id; got 2" in capsys.readouterr().err
    assert main(["build", "--stac-api", api.url(), "--query", "{cloud", "-o", str(out)]) == 1
    assert "--query is not valid JSON" in capsys.readouterr().err


# --------------------------------------------------------------------------- signing


def test_sign_signs_the_header_reads_and_no_token_is_kept(
    tmp_path: Path, sample_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from token_server import BLOBS, SASServers
    from xarray_rasteret.data_sources import PlanetaryComputerSigner
    from xarray_rasteret.errors import PermissionDeniedError

    (tmp_path / BLOBS).mkdir(parents=True)
    for tif in sample_folder.glob("*_B04.tif"):
        shutil.copy(tif, tmp_path / BLOBS / tif.name)
    features = json.loads((sample_folder / "items.json").read_text())["features"]
    with SASServers(tmp_path) as sas:
        for f in features:
            f["collection"] = "sentinel-2-l2a"
            f["assets"] = {"B04": dict(f["assets"]["B04"])}
            f["assets"]["B04"]["href"] = sas.blob_url(f"{BLOBS}/{f['id']}_B04.tif")
        with pytest.raises(PermissionDeniedError):
            xrr.build(features, bands=["B04"])
        got = xrr.build(features, bands=["B04"], sign=PlanetaryComputerSigner(sas_api=sas.api_url))
        assert sas.issued.count >= 1
        # A catalogue id signs with its data source's signer (its SAS API moved here).
        monkeypatch.setenv("PC_SDK_SAS_URL", f"{sas.api_url}/token")
        with StacAPIServer(features) as api:
            by_id = xrr.build("pc/sentinel-2-l2a", stac_api=api.url(), bands=["B04"])
    assert _ids(got) == _ids(by_id) == IDS
    for coll in (got, by_id):
        hrefs = [s.href for s in coll.sources("B04")]
        assert hrefs == [sas.blob_url(f"{BLOBS}/{i}_B04.tif") for i in IDS]
        assert "sig=" not in json.dumps(coll.table.column("assets").to_pylist())
