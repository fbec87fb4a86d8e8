"""``xr.open_datatree(..., engine="rasteret")``: one group per native grid, nothing resampled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

import xarray_rasteret as xrr
from cogs import write_tiff

# Sentinel-2-like: 10, 20 and 60 m bands over one 1920 m square.
BANDS = {"B02": 10, "B03": 10, "B05": 20, "B01": 60}
ZONES = {"a": (32633, 500_000.0), "b": (32633, 500_000.0), "z": (32634, 300_000.0)}


def _write(root: Path, record: str) -> dict[str, str]:
    epsg, x0 = ZONES[record]
    paths = {}
    for i, (band, size) in enumerate(BANDS.items()):
        path = root / f"{record}_{band}.tif"
        n = 1920 // size
        write_tiff(path, dtype="uint16", width=n, height=n, crs=f"EPSG:{epsg}",
                   transform=Affine(size, 0, x0, 0, -size, 5_000_000.0), compress="DEFLATE",
                   blockxsize=64, blockysize=64, nodata=0, seed=hash((record, i)) % 1000)
        paths[band] = str(path)
    return paths


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    root = tmp_path_factory.mktemp("tree")
    return {record: _write(root, record) for record in ZONES}


def _collection(files: dict[str, dict[str, str]], records: str) -> xrr.Collection:
    hrefs = [files[r][b] for r in records for b in BANDS]
    return xrr.build(hrefs, group_by=lambda h: tuple(Path(h).stem.split("_")))  # type: ignore[arg-type]


def test_one_group_per_resolution_each_as_open_dataset(files) -> None:
    col = _collection(files, "ab")
    tree = xr.open_datatree(col, engine="rasteret")
    assert sorted(tree.children) == ["r10m", "r20m", "r60m"]
    for name, bands in {"r10m": ["B02", "B03"], "r20m": ["B05"], "r60m": ["B01"]}.items():
        group = tree[name].to_dataset()
        alone = xr.open_dataset(col, engine="rasteret", bands=bands)
        assert list(group.data_vars) == bands
        xr.testing.assert_identical(group.load(), alone.load())
    # Native pixels: the 60 m band is the file, as rasterio reads it.
    with rasterio.open(files["a"]["B01"]) as src:
        np.testing.assert_array_equal(tree["r60m"].B01.isel(time=0).values, src.read(1))
    assert tree["r20m"].B05.shape == (2, 96, 96)


def test_several_crs_make_a_group_per_crs_and_resolution(files) -> None:
    groups = xr.open_groups(_collection(files, "abz"), engine="rasteret", bands=["B02", "B05"])
    assert list(groups) == ["/", "/EPSG_32633/r10m", "/EPSG_32633/r20m", "/EPSG_32634/r10m",
                            "/EPSG_32634/r20m"]
    assert list(groups["/EPSG_32634/r10m"].id.values) == ["z"]
    with rasterio.open(files["z"]["B05"]) as src:
        np.testing.assert_array_equal(groups["/EPSG_32634/r20m"].B05.values[0], src.read(1))


def test_groups_without_selected_records_are_left_out(files) -> None:
    col = _collection(files, "abz")
    # A bbox over zone 33's square only.
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(32633, 4326, always_xy=True).transform(500_960, 4_999_040)
    tree = xr.open_datatree(col, engine="rasteret", bbox=(lon - 0.001, lat - 0.001, lon + 0.001,
                                                          lat + 0.001))
    assert sorted(tree.children) == ["EPSG_32633"]
    with pytest.raises(xrr.errors.AOIOutsideDataError):
        xr.open_datatree(col, engine="rasteret", bbox=(0, 0, 0.1, 0.1))


def test_a_band_at_two_sizes_in_one_crs_has_no_native_grid(files, tmp_path) -> None:
    odd = tmp_path / "b_B05.tif"
    write_tiff(odd, dtype="uint16", width=64, height=64, crs="EPSG:32633",
               transform=Affine(30, 0, 500_000.0, 0, -30, 5_000_000.0))
    hrefs = [files["a"]["B05"], str(odd)]
    col = xrr.build(hrefs, group_by=lambda h: tuple(Path(h).stem.split("_")))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"band 'B05' comes at several pixel sizes .* \(e.g. "
                                         r"record 'b'\): it has no native grid; open it with"):
        xr.open_datatree(col, engine="rasteret")


def test_a_crs_without_code_has_the_same_group_name_in_every_process() -> None:
    import subprocess
    import sys

    from xarray_rasteret._lazy.tree import _crs_name

    wkt = 'PROJCS["custom",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",17.3],PARAMETER["scale_factor",1],PARAMETER["false_easting",0],PARAMETER["false_northing",0],UNIT["metre",1]]'  # noqa: E501
    code = f"from xarray_rasteret._lazy.tree import _crs_name; print(_crs_name({wkt!r}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert other == _crs_name(wkt) and other.startswith("crs_") and len(other) == 12
