"""Every form STAC items come in, local and remote, and where relative hrefs resolve.

The embedded sample (a FeatureCollection with relative asset hrefs and its COGs)
is written in each form; builds are compared with the build of the original
file, and pixels read through a loopback HTTP server with rasterio's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr

import xarray_rasteret as xrr
from xarray_rasteret.errors import ObjectNotFoundError

BANDS = ["B04", "B08"]


def _features(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / "items.json").read_text())["features"]


def _facts(coll: Any) -> list[Any]:
    """What a build found, without the hrefs (they differ between local and remote)."""
    out: list[Any] = [list(coll.table.column("id").to_pylist()), list(coll.datetimes)]
    for band in coll.bands:
        out.append(
            [
                (Path(s.href).name, s.dtype, s.crs, tuple(s.transform), s.nodata, len(s.levels))
                for s in coll.sources(band)
            ]
        )
    return out


@pytest.fixture
def sample(sample_folder: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "sample"
    shutil.copytree(sample_folder, folder)
    return folder


@pytest.fixture
def expected(sample: Path) -> list[Any]:
    return _facts(xrr.build(sample / "items.json", bands=BANDS))


def test_a_json_list_of_items(sample: Path, expected: list[Any]) -> None:
    (sample / "list.json").write_text(json.dumps(_features(sample)))
    got = xrr.build(sample / "list.json", bands=BANDS)
    assert _facts(got) == expected
    assert len(expected[0]) == 4


@pytest.mark.parametrize("suffix", [".ndjson", ".jsonl"])
def test_ndjson_one_item_per_line(sample: Path, expected: list[Any], suffix: str) -> None:
    path = sample / f"items{suffix}"
    path.write_text("\n".join(json.dumps(f) for f in _features(sample)) + "\n")
    assert _facts(xrr.build(path, bands=BANDS)) == expected


def test_item_files_and_one_item_file(sample: Path, expected: list[Any]) -> None:
    paths = []
    for f in _features(sample):
        paths.append(sample / f"{f['id']}.json")
        paths[-1].write_text(json.dumps(f))
    assert _facts(xrr.build(paths, bands=BANDS)) == expected
    one = xrr.build(str(paths[0]), bands=BANDS)
    assert one.table.column("id").to_pylist() == [expected[0][0]]


def test_a_feature_collection_dict_and_a_list_of_them(sample: Path, expected: list[Any]) -> None:
    fc = json.loads((sample / "items.json").read_text())
    assert _facts(xrr.build(fc, bands=BANDS, base_href=str(sample))) == expected
    half = [dict(fc, features=fc["features"][:2]), dict(fc, features=fc["features"][2:])]
    (sample / "halves.json").write_text(json.dumps(half))
    assert _facts(xrr.build(sample / "halves.json", bands=BANDS)) == expected


def test_remote_items_over_http_read_the_same_pixels(
    sample: Path, expected: list[Any], http_server: Any
) -> None:
    shutil.copytree(sample, http_server.root, dirs_exist_ok=True)
    (Path(http_server.root) / "items.ndjson").write_text(
        "\n".join(json.dumps(f) for f in _features(sample))
    )
    for name in ("items.json", "items.ndjson"):
        coll = xrr.build(http_server.url(name), bands=BANDS)
        assert _facts(coll) == expected
        hrefs = [s.href for s in coll.sources("B04")]
        assert all(h.startswith(http_server.url()) for h in hrefs), hrefs
    coll.to_parquet(sample / "remote.parquet")
    with xr.open_dataset(sample / "remote.parquet", engine="rasteret", bands=["B04"]) as ds:
        got = ds.B04.isel(time=0).values
        first = Path(coll.sources("B04")[0].href).name
    with rasterio.open(sample / first) as src:
        want = src.read(1)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_remote_items_on_s3(sample: Path, expected: list[Any], s3_server: Any) -> None:
    for path in sample.iterdir():
        if path.suffix in (".tif", ".json"):
            s3_server.upload(f"stac/{path.name}", path.read_bytes())
    coll = xrr.build(
        f"s3://{s3_server.bucket}/stac/items.json",
        bands=BANDS,
        storage_options=s3_server.storage_options,
    )
    assert _facts(coll) == expected
    assert coll.sources("B08")[0].href.startswith(f"s3://{s3_server.bucket}/stac/S2X_")


def test_base_href_for_items_in_memory(
    sample: Path, expected: list[Any], http_server: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # not the sample folder: the hrefs must not resolve here
    items = _features(sample)
    assert _facts(xrr.build(items, bands=BANDS, base_href=str(sample))) == expected
    shutil.copytree(sample, http_server.root, dirs_exist_ok=True)
    remote = xrr.build(items, bands=BANDS, base_href=http_server.url())
    assert _facts(remote) == expected
    # base_href wins over the file the items were read from.
    moved = tmp_path / "elsewhere.json"
    moved.write_text(json.dumps(items))
    assert _facts(xrr.build(moved, bands=BANDS, base_href=str(sample))) == expected


def test_an_unresolvable_relative_href_says_what_it_was_resolved_against(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # Files are read concurrently: whichever fails first is the one named.
    hrefs = [a["href"] for f in _features(sample) for a in f["assets"].values()]
    with pytest.raises(ObjectNotFoundError, match="resolved against the working directory") as e:
        xrr.build(_features(sample), bands=BANDS)
    message = str(e.value)
    assert any(repr(h) in message for h in hrefs), message
    assert str(tmp_path) in message and "base_href=" in message
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(_features(sample)))
    with pytest.raises(ObjectNotFoundError, match="resolved against '.*moved.json'"):
        xrr.build(moved, bands=BANDS)


def test_a_404_during_build_says_the_file_is_missing(sample: Path, http_server: Any) -> None:
    shutil.copytree(sample, http_server.root, dirs_exist_ok=True)
    gone = "S2X_33TWN_20240508_L2A_B08.tif"
    http_server.set_faults(missing=frozenset({gone}))
    with pytest.raises(ObjectNotFoundError, match=r"is missing \(HTTP 404\)") as e:
        xrr.build(http_server.url("items.json"), bands=BANDS)
    message = str(e.value)
    assert gone in message and "record 'S2X_33TWN_20240508_L2A' band 'B08'" in message
    assert "same location" not in message


def test_a_missing_local_cog_says_the_file_is_missing(sample: Path) -> None:
    (sample / "S2X_33TWN_20240503_L2A_B04.tif").unlink()
    with pytest.raises(ObjectNotFoundError, match="S2X_33TWN_20240503_L2A_B04.tif is missing"):
        xrr.build(sample / "items.json", bands=BANDS)


def test_bad_item_files_are_named(sample: Path, http_server: Any) -> None:
    lines = sample / "bad.ndjson"
    lines.write_text(json.dumps(_features(sample)[0]) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad.ndjson line 2 is not JSON"):
        xrr.build(lines)
    other = sample / "other.json"
    other.write_text(json.dumps({"type": "Catalog", "id": "c", "links": []}))
    with pytest.raises(ValueError, match=r"other.json holds a Catalog that is not a STAC item"):
        xrr.build(other)
    empty = sample / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty.jsonl is empty"):
        xrr.build(empty)
    with pytest.raises(ObjectNotFoundError, match="no such STAC item file: '.*nope.json'"):
        xrr.build(sample / "nope.json")
    remote_missing = r"no such STAC item file: '.*nope.json' \(HTTP 404\)"
    with pytest.raises(ObjectNotFoundError, match=remote_missing):
        xrr.build(http_server.url("nope.json"))


def test_base_href_and_datetime_from_belong_to_their_sources(sample: Path) -> None:
    with pytest.raises(ValueError, match="base_href applies to STAC items only"):
        xrr.build([sample / "S2X_33TWN_20240503_L2A_B04.tif"], base_href=str(sample))
    with pytest.raises(ValueError, match="datetime_from apply to a list of COG paths only"):
        xrr.build(sample / "items.json", datetime_from="%Y%m%d")


@pytest.mark.parametrize("name", ["items.json", "items.ndjson", "items.jsonl"])
def test_opening_item_files_says_build_first(sample: Path, name: str) -> None:
    (sample / name).write_text("\n".join(json.dumps(f) for f in _features(sample)))
    with pytest.raises(ValueError, match=rf"looks like STAC items, not a collection: build one "
                       rf"first, e\.g\. xarray_rasteret\.build\('.*{name}'\)"):
        xr.open_dataset(sample / name, engine="rasteret")


def test_ndjson_under_a_json_name(sample: Path, expected: list[Any]) -> None:
    path = sample / "lines.json"
    path.write_text("\n".join(json.dumps(f) for f in _features(sample)))
    assert _facts(xrr.build(path, bands=BANDS)) == expected


def test_remote_item_files_are_read_within_a_bound(
    sample: Path, http_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xarray_rasteret.errors import RasteretError
    from xarray_rasteret.ingest import _stac

    shutil.copytree(sample, http_server.root, dirs_exist_ok=True)
    size = (sample / "items.json").stat().st_size
    monkeypatch.setattr(_stac, "_MAX_ITEM_BYTES", size - 1)
    with pytest.raises(RasteretError, match=rf"items.json' is {size} bytes, more than the "
                       rf"{size - 1} read whole"):
        xrr.build(http_server.url("items.json"))
    assert http_server.stats.requests == 1  # refused on its size, before reading it
