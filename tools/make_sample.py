"""Regenerate the embedded sample (a small Sentinel-2-like collection) with rasterio.

Dev-only: ``python tools/make_sample.py``. The library never imports rasterio;
the files it writes are committed under ``src/xarray_rasteret/data/sample``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.warp import transform_geom

OUT = Path(__file__).resolve().parents[1] / "src" / "xarray_rasteret" / "data" / "sample"
SIZE, RES, X0, Y0, EPSG = 512, 10.0, 600_000.0, 5_000_020.0, 32633


COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def field(seed: int, base: float, amp: float) -> np.ndarray:
    """A smooth uint16 field with a little noise, seeded."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    smooth = np.sin(3 * xx + seed) * np.cos(2 * yy - seed) + 0.5 * np.sin(9 * xx * yy)
    data = base + amp * smooth + rng.normal(0, amp * 0.05, (SIZE, SIZE))
    return np.clip(data, 1, 65535).astype("uint16")


def main() -> None:
    """Write the sample's COGs and its STAC items into ``OUT``."""
    OUT.mkdir(parents=True, exist_ok=True)
    transform = from_origin(X0, Y0, RES, RES)
    features = []
    start = datetime(2024, 5, 3, 10, 0, 12)
    for i in range(4):
        item_id = f"S2X_33TWN_{(start + timedelta(days=5 * i)):%Y%m%d}_L2A"
        assets = {}
        for band, base, amp in (("B04", 800, 600), ("B08", 2500, 900)):
            data = field(i * 10 + len(band) + int(band[1:]), base, amp)
            data[:, : 40 * i] = 0  # nodata edge, like a swath border
            name = f"{item_id}_{band}.tif"
            with rasterio.open(
                OUT / name, "w", driver="COG", width=SIZE, height=SIZE, count=1,
                dtype="uint16", crs=f"EPSG:{EPSG}", transform=transform, nodata=0,
                compress="DEFLATE", predictor=2, blocksize=256, overview_resampling="average",
            ) as dst:
                dst.write(data, 1)
            assets[band] = {"href": f"./{name}", "type": COG_TYPE, "roles": ["data"]}
        bounds = (X0, Y0 - SIZE * RES, X0 + SIZE * RES, Y0)
        poly = {"type": "Polygon", "coordinates": [[
            (bounds[0], bounds[1]), (bounds[2], bounds[1]), (bounds[2], bounds[3]),
            (bounds[0], bounds[3]), (bounds[0], bounds[1])]]}
        geom = transform_geom(f"EPSG:{EPSG}", "EPSG:4326", poly)
        xs = [c[0] for c in geom["coordinates"][0]]
        ys = [c[1] for c in geom["coordinates"][0]]
        features.append({
            "type": "Feature", "stac_version": "1.0.0", "id": item_id,
            "geometry": geom, "bbox": [min(xs), min(ys), max(xs), max(ys)],
            "properties": {
                "datetime": (start + timedelta(days=5 * i)).isoformat() + "Z",
                "eo:cloud_cover": [3.5, 41.0, 12.25, 0.5][i],
                "platform": "sentinel-2x", "proj:epsg": EPSG,
            },
            "assets": assets, "links": [],
        })
    collection = {"type": "FeatureCollection", "features": features}
    (OUT / "items.json").write_text(json.dumps(collection, indent=1))


if __name__ == "__main__":
    main()
