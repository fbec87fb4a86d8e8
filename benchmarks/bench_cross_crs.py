"""Cross-CRS read of 12 small scenes onto one EPSG:4326 grid: xarray-rasteret vs rioxarray.

Six scenes in UTM zone 33 and six in zone 34 straddle their shared meridian
(18 E, 20 N; about 2 degrees of grid rotation between the zones). Both tools
warp every scene onto the same geographic grid with bilinear resampling:

* xarray-rasteret: ``xr.open_dataset(collection, engine="rasteret",
  crs="EPSG:4326", resolution=..., resampling="bilinear").load()`` (index
  load and open included; requests counted at the store);
* rioxarray/GDAL: ``rioxarray.open_rasterio(path).rio.reproject(...)`` per
  scene onto the same grid (GDAL reads local files, so only files opened are
  counted).

Run ``python benchmarks/bench_cross_crs.py``; it prints one Markdown table row.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import cast

import numpy as np

N_SCENES = 12
SIZE = 512
RES_DEG = 1e-4


def _write_scenes(root: Path) -> tuple[list[str], list[str]]:
    import rasterio
    from affine import Affine
    from pyproj import Transformer

    paths, times = [], []
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    for i in range(N_SCENES):
        epsg = 32633 if i % 2 == 0 else 32634
        lon = 17.97 + 0.06 * (i % 2) + 0.004 * (i // 2)
        lat = 20.0 + 0.01 * (i // 2)
        x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
        transform = Affine(10.0, 0.0, round(x / 10) * 10, 0.0, -10.0, round(y / 10) * 10)
        data = 4000 + 1500 * np.sin(xx / (40 + i)) * np.cos(yy / 57) + rng.normal(0, 20, xx.shape)
        data = data.astype("uint16")
        data[rng.random(data.shape) < 0.01] = 0
        path = root / f"s{i:02d}.tif"
        with rasterio.open(
            path, "w", driver="GTiff", width=SIZE, height=SIZE, count=1, dtype="uint16",
            crs=f"EPSG:{epsg}", transform=transform, nodata=0, tiled=True, blockxsize=256,
            blockysize=256, compress="DEFLATE", predictor=2,
        ) as ds:
            ds.write(data, 1)
        paths.append(str(path))
        times.append(f"2024-05-{1 + i:02d}T09:40")
    return paths, times


def _collection(paths: list[str], times: list[str], out: Path) -> Path:
    import pyarrow as pa

    import xarray_rasteret as xrr

    col = xrr.build(paths)
    by_id = {Path(p).stem: t for p, t in zip(paths, times, strict=True)}
    table = col.table.set_column(
        col.table.schema.get_field_index("datetime"),
        "datetime",
        pa.array([np.datetime64(by_id[i], "us") for i in col.ids], pa.timestamp("us")),
    )
    path = out / "collection.parquet"
    xrr.Collection(table).to_parquet(path)
    return path


def main() -> None:
    import rioxarray
    import xarray as xr
    from affine import Affine
    from rasterio.enums import Resampling

    import xarray_rasteret as xrr

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths, times = _write_scenes(root)
        col_path = _collection(paths, times, root)

        t0 = time.perf_counter()
        with xrr.track() as stats:
            ds = xr.open_dataset(col_path, engine="rasteret", crs="EPSG:4326",
                                 resolution=RES_DEG, resampling="bilinear").load()
        ours_s = time.perf_counter() - t0
        ours = ds["band_1"].values
        gt = [float(v) for v in ds.spatial_ref.attrs["GeoTransform"].split()]
        transform = Affine.from_gdal(*gt)
        shape = (ds.sizes["y"], ds.sizes["x"])

        t0 = time.perf_counter()
        theirs = []
        for p in paths:
            with cast(xr.DataArray, rioxarray.open_rasterio(p)) as da:
                warped = da.rio.reproject("EPSG:4326", shape=shape, transform=transform,
                                          resampling=Resampling.bilinear, nodata=0)
                theirs.append(warped.values[0])
        rio_s = time.perf_counter() - t0
        same = float(np.mean(np.abs(ours.astype(np.int64) - np.stack(theirs)) <= 1))

    print(
        f"| cross-CRS, {N_SCENES} scenes {SIZE}x{SIZE} (UTM 33+34) -> EPSG:4326 "
        f"{shape[1]}x{shape[0]} bilinear | xarray-rasteret {ours_s:.2f} s, "
        f"{stats.requests} requests, {stats.bytes / 1e6:.1f} MB | rioxarray rio.reproject "
        f"{rio_s:.2f} s, {len(paths)} files (GDAL, local) | within 1 unit: {same:.2%} |"
    )


if __name__ == "__main__":
    main()
