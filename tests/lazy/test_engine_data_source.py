"""``data_source=`` in the engine: band codes, href rewriting and inference, as the helpers do."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import xarray as xr
from affine import Affine

import xarray_rasteret as xrr
from cogs import with_datetimes, write_tiff
from xarray_rasteret.collection import Collection
from xarray_rasteret.data_sources import DataSource
from xarray_rasteret.errors import BandNotFoundError, ObjectNotFoundError

TRANSFORM = Affine(10.0, 0, 600_000.0, 0, -10.0, 5_000_000.0)
BBOX = (600_200.0, 4_999_300.0, 601_000.0, 4_999_900.0)


def _group(href: str) -> tuple[str, str]:
    stem = href.rsplit("/", 1)[-1].removesuffix(".tif")
    rid, band = stem.rsplit("_", 1)
    return rid, band


def _earth_search_like(folder: Path) -> Collection:
    """Two records with Earth Search's asset names (red, nir), tagged sentinel-2-l2a."""
    folder.mkdir(parents=True)
    hrefs = []
    for i in range(2):
        for j, band in enumerate(("red", "nir")):
            path = folder / f"r{i}_{band}.tif"
            write_tiff(path, dtype="uint16", width=160, height=96, blockxsize=64, blockysize=32,
                       compress="DEFLATE", nodata=0, seed=4 * i + j, transform=TRANSFORM)
            hrefs.append(str(path))
    col = xrr.build(hrefs, group_by=_group)
    table = with_datetimes(col.table, {"r0": "2024-01-01", "r1": "2024-01-02"})
    table = table.append_column("collection", pa.array(["sentinel-2-l2a"] * len(col)))
    return Collection(table)


def _rasterio(folder: Path, band: str) -> np.ndarray:
    out = []
    for i in range(2):
        with rasterio.open(folder / f"r{i}_{band}.tif") as r:
            out.append(r.read(1))
    return np.stack(out)


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Collection]:
    # "sentinel-cogs" in the hrefs: Earth Search's bucket, by which the source is inferred.
    folder = tmp_path_factory.mktemp("es") / "sentinel-cogs"
    return folder, _earth_search_like(folder)


def test_band_codes_of_a_named_source_read_the_mapped_assets(sentinel) -> None:
    folder, col = sentinel
    ds = xr.open_dataset(col, engine="rasteret", bands=["B04", "B08"],
                         data_source="sentinel-2-l2a/earth-search")
    assert list(ds.data_vars) == ["B04", "B08"]
    np.testing.assert_array_equal(ds.B04.values, _rasterio(folder, "red"))
    np.testing.assert_array_equal(ds.B08.values, _rasterio(folder, "nir"))
    # The same pixels as the helpers read with the same data source.
    got = xrr.get_xarray(col, geometries=BBOX, geometry_crs="EPSG:32633", bands=["B04", "B08"],
                         data_source="sentinel-2-l2a/earth-search")
    window = ds.sel(x=slice(BBOX[0], BBOX[2]), y=slice(BBOX[3], BBOX[1]))
    for band in ("B04", "B08"):
        np.testing.assert_array_equal(got[band].isel(geometry=0).values, window[band].values)


def test_the_source_is_inferred_from_collection_ids_and_hrefs(sentinel) -> None:
    folder, col = sentinel
    ds = xr.open_dataset(col, engine="rasteret", bands=["B04"])
    np.testing.assert_array_equal(ds.B04.values, _rasterio(folder, "red"))
    # Asset keys still work, and every band opens without bands=.
    both = xr.open_dataset(col, engine="rasteret")
    assert sorted(both.data_vars) == ["nir", "red"]


def test_a_source_of_ones_own_rewrites_hrefs_at_read_time(tmp_path: Path) -> None:
    old, new = tmp_path / "was-here", tmp_path / "now-here"
    col = _earth_search_like(old)
    path = tmp_path / "col.parquet"
    col.to_parquet(path)
    os.rename(old, new)
    moved = DataSource(
        "moved", band_map={"B04": "red"},
        rewrite_href=lambda href: href.replace(str(old), str(new)),
    )
    ds = xr.open_dataset(path, engine="rasteret", bands=["B04"], data_source=moved)
    np.testing.assert_array_equal(ds.B04.values, _rasterio(new, "red"))
    np.testing.assert_array_equal(
        xrr.get_numpy(path, geometries=BBOX, geometry_crs="EPSG:32633", bands=["B04"],
                      data_source=moved),
        ds.B04.sel(x=slice(BBOX[0], BBOX[2]), y=slice(BBOX[3], BBOX[1])).values,
    )
    with pytest.raises(ObjectNotFoundError, match="was-here"):
        xr.open_dataset(path, engine="rasteret", bands=["red"]).red.values


def test_data_source_slips_are_named(sentinel) -> None:
    _, col = sentinel
    with pytest.raises(BandNotFoundError, match=r"'B99'.*\['nir', 'red'\].*earth-search.*B04"):
        xr.open_dataset(col, engine="rasteret", bands=["B99"],
                        data_source="sentinel-2-l2a/earth-search")
    with pytest.raises(KeyError, match=r"unknown data source 'nope'.*earth-search"):
        xr.open_dataset(col, engine="rasteret", bands=["B04"], data_source="nope")
    with pytest.raises(TypeError, match="data_source must be the name of a registered"):
        xr.open_dataset(col, engine="rasteret", bands=["B04"], data_source=3)
