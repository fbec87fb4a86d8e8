"""Regenerate rasteret 0.4.1's results for the parity suite (tests/helpers/test_rasteret_parity.py).

Run with an interpreter that has rasteret 0.4.1 and rasterio (rasteret needs
Python >= 3.12)::

    python3.12 -m venv /tmp/rr && /tmp/rr/bin/pip install rasteret==0.4.1 rasterio
    /tmp/rr/bin/python tools/parity/make_goldens.py

It writes, under ``tests/data/parity``: the ``zones`` COGs (two records either
side of a UTM zone boundary), rasteret's own index of each collection (its hrefs
replaced by ``@DATA@/<file>``, which the test points at its copy of the files),
and ``goldens/<case>.npz|json``, one per case of ``tests/helpers/parity_cases.py``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import rasteret
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.warp import transform_geom

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "helpers"))

from parity_cases import CASES, ZONES_RECORDS  # noqa: E402
from parity_format import write_result  # noqa: E402

OUT = ROOT / "tests" / "data" / "parity"
SAMPLE = ROOT / "src" / "xarray_rasteret" / "data" / "sample"
PLACEHOLDER = "@DATA@"


def write_zones(folder: Path) -> list[dict]:
    """The zones COGs (deterministic pixels) and their records."""
    rng = np.random.default_rng(7)
    records = []
    for rid, crs, (x0, y0), when in ZONES_RECORDS:
        data = rng.integers(100, 2000, (256, 256), dtype=np.int16)
        data[:40, :60] = -9999
        path = folder / f"{rid}_elev.tif"
        transform = from_origin(x0, y0, 30.0, 30.0)
        with rasterio.open(
            path, "w", driver="GTiff", width=256, height=256, count=1, dtype="int16",
            crs=crs, transform=transform, nodata=-9999, tiled=True, blockxsize=128,
            blockysize=128, compress="deflate",
        ) as dst:
            dst.write(data, 1)
        box = shapely.box(x0, y0 - 256 * 30, x0 + 256 * 30, y0)
        footprint = shapely.geometry.shape(transform_geom(crs, "EPSG:4326", box.__geo_interface__))
        records.append({
            "id": rid, "datetime": when, "geometry": footprint, "eo:cloud_cover": 0.0,
            "assets": {"elev": {"href": str(path)}},
        })
    return records


def sample_records() -> list[dict]:
    """The embedded sample's records, hrefs to its files."""
    items = json.loads((SAMPLE / "items.json").read_text())["features"]
    return [
        {
            "id": f["id"], "datetime": f["properties"]["datetime"],
            "geometry": shapely.geometry.shape(f["geometry"]),
            "eo:cloud_cover": f["properties"]["eo:cloud_cover"],
            "assets": {
                k: {"href": str(SAMPLE / v["href"].removeprefix("./"))}
                for k, v in f["assets"].items()
            },
        }
        for f in items
    ]


def build(records: list[dict], name: str, bands: list[str], work: Path):
    """The rasteret collection of ``records``, its COG headers parsed."""
    rows = [{**r, "geometry": shapely.to_wkb(r["geometry"])} for r in records]
    table = pa.Table.from_pylist(rows)
    when = pc.strptime(table["datetime"], "%Y-%m-%dT%H:%M:%SZ", "us")
    table = table.set_column(
        table.schema.get_field_index("datetime"), "datetime",
        pc.cast(when, pa.timestamp("us", tz="UTC")),
    )
    return rasteret.build_from_table(
        table, name=name, enrich_cog=True, band_codes=bands, workspace_dir=work, force=True
    )


def save_index(collection, name: str, data_folder: Path) -> None:
    """The index rasteret wrote, as one Parquet file, its hrefs relative to ``@DATA@``."""
    table = collection.dataset.to_table()
    assets = table.column("assets").to_pylist()
    for row in assets:
        for asset in row.values():
            if asset and asset.get("href"):
                asset["href"] = asset["href"].replace(str(data_folder), PLACEHOLDER)
    i = table.schema.get_field_index("assets")
    table = table.set_column(i, "assets", pa.array(assets, table.schema.field("assets").type))
    pq.write_table(table, OUT / f"{name}.parquet")


def main() -> None:
    """Write the zones COGs, both indexes and every golden."""
    (OUT / "goldens").mkdir(parents=True, exist_ok=True)
    zones = OUT / "zones"
    zones.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        collections = {
            "sample": build(sample_records(), "sample", ["B04", "B08"], work),
            "zones": build(write_zones(zones), "zones", ["elev"], work),
        }
        save_index(collections["sample"], "sample", SAMPLE)
        save_index(collections["zones"], "zones", zones)
        for case, (which, call) in CASES.items():
            try:
                result = call(collections[which])
            except Exception as exc:  # the golden of a call rasteret refuses is its error
                result = exc
            write_result(OUT / "goldens", case, result)
            print(f"{case:28s} {type(result).__name__}")


if __name__ == "__main__":
    main()
