"""Generate (once, cached) a Sentinel-2-like COG collection and the requests to time.

Layout
------
* ``n_main`` scenes (dates) on one UTM grid (EPSG:32633) covering the same
  footprint, as one Sentinel-2 tile seen on several dates, straddling 18 deg E;
* ``n_next`` scenes in the neighbouring zone (EPSG:32634) centred on the same
  place, so they overlap the main scenes almost entirely (rotated ~4 deg);
* bands B02/B04/B08, one single-band COG each: uint16, DEFLATE + predictor 2,
  nodata 0, 1024x1024 tiles, internal overviews;
* content: several octaves of smooth value noise (a landscape shared by the
  dates of a zone) times a per-date gain plus haze and sensor noise, with
  diagonal swath borders of nodata on some dates.

AOIs (256x256 pixels on the main grid) and points lie in the central part of
the main grid, which every scene covers.

The result is described by a :class:`Manifest` saved as ``manifest.json``
next to the files; it is written last, so its presence means the cache is
complete.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BANDS",
    "CACHE",
    "Manifest",
    "Scene",
    "Spec",
    "ensure_data",
    "stac_items",
]

CACHE = Path(__file__).parent / ".cache"
BANDS = ("B02", "B04", "B08")
MAIN_EPSG = 32633
NEXT_EPSG = 32634
RES = 10.0
# Centre of the footprint: on the zone border, so both zones hold it.
CENTRE_LONLAT = (18.0, 47.0)
_BAND_LEVEL = {"B02": (600.0, 0.6), "B04": (800.0, 0.9), "B08": (2600.0, 1.6)}


@dataclass(frozen=True)
class Spec:
    """How much data to generate and how many requests to make.

    Parameters
    ----------
    size
        Width and height of every scene, pixels.
    n_main, n_next
        Scenes on the main grid and in the neighbouring zone.
    n_aois
        256x256 AOIs for S2.
    n_points
        Points for S5.
    n_cross_aois
        AOIs for S3 (cross-CRS).
    aoi
        AOI side, pixels.
    seed
        Seed of everything random.
    """

    size: int = 4000
    n_main: int = 12
    n_next: int = 4
    n_aois: int = 50
    n_points: int = 2000
    n_cross_aois: int = 10
    aoi: int = 256
    seed: int = 20240601

    @classmethod
    def quick(cls) -> Spec:
        """A small version: 4 + 2 scenes of 2048x2048, fewer AOIs and points."""
        return cls(size=2048, n_main=4, n_next=2, n_aois=8, n_points=300, n_cross_aois=2)

    def key(self) -> str:
        """Short hash naming this spec's cache directory."""
        text = json.dumps(asdict(self), sort_keys=True) + "v1"
        return hashlib.sha1(text.encode()).hexdigest()[:10]


@dataclass
class Scene:
    """One scene (record): an id, a date, a grid and a file per band."""

    id: str
    datetime: str
    epsg: int
    transform: list[float]
    width: int
    height: int
    files: dict[str, str]

    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` in the scene's CRS."""
        a, _, c, _, e, f = self.transform
        return (c, f + e * self.height, c + a * self.width, f)


@dataclass
class Manifest:
    """What was generated: scenes, AOIs and points, and where the files are."""

    root: str
    spec: dict[str, Any]
    scenes: list[Scene]
    aois: list[list[int]] = field(default_factory=list)
    """``[row, col]`` of each S2 AOI's top-left pixel on the main grid."""
    cross_aois: list[list[int]] = field(default_factory=list)
    """``[row, col]`` of each S3 AOI on the main grid."""
    points: list[list[float]] = field(default_factory=list)
    """``[x, y]`` of each point, EPSG:32633."""

    @property
    def main(self) -> list[Scene]:
        """Scenes on the main grid, by date."""
        return [s for s in self.scenes if s.epsg == MAIN_EPSG]

    @property
    def next(self) -> list[Scene]:
        """Scenes in the neighbouring zone, by date."""
        return [s for s in self.scenes if s.epsg == NEXT_EPSG]

    @property
    def aoi_size(self) -> int:
        """AOI side in pixels."""
        return int(self.spec["aoi"])

    def path(self, scene: Scene, band: str) -> str:
        """Local path of a scene's band."""
        return os.path.join(self.root, scene.files[band])

    def all_files(self) -> list[str]:
        """Every file, relative to :attr:`root`, by scene then band."""
        return [s.files[b] for s in self.scenes for b in BANDS]

    def aoi_bounds(self, row: int, col: int) -> tuple[float, float, float, float]:
        """Bounds (EPSG:32633) of the AOI whose top-left pixel is ``(row, col)``."""
        a, _, c, _, e, f = self.main[0].transform
        n = self.aoi_size
        return (c + col * a, f + (row + n) * e, c + (col + n) * a, f + row * e)

    def save(self) -> None:
        """Write ``manifest.json`` in :attr:`root`."""
        data = asdict(self)
        tmp = os.path.join(self.root, "manifest.json.tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, os.path.join(self.root, "manifest.json"))

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> Manifest:
        """Read ``manifest.json`` from ``root``."""
        with open(os.path.join(root, "manifest.json")) as f:
            data = json.load(f)
        data["scenes"] = [Scene(**s) for s in data["scenes"]]
        data["root"] = str(root)
        return cls(**data)


# --------------------------------------------------------------------------- content


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Weights ``(n_out, n_in)`` that smoothly interpolate ``n_in`` nodes onto ``n_out`` pixels."""
    pos = np.linspace(0, n_in - 1, n_out)
    i0 = np.minimum(np.floor(pos).astype(int), n_in - 2)
    t = pos - i0
    t = t * t * (3 - 2 * t)  # smoothstep: no kinks at the nodes
    w = np.zeros((n_out, n_in), np.float32)
    rows = np.arange(n_out)
    w[rows, i0] = 1 - t
    w[rows, i0 + 1] = t
    return w


def smooth_noise(size: int, rng: np.random.Generator, octaves: int = 7) -> np.ndarray:
    """Fractal value noise in about ``[-1, 1]``: octaves of interpolated random grids."""
    out = np.zeros((size, size), np.float32)
    amp, nodes, total = 1.0, 4, 0.0
    for _ in range(octaves):
        grid = rng.standard_normal((nodes, nodes)).astype(np.float32)
        w = _interp_matrix(size, nodes)
        out += amp * (w @ grid @ w.T)
        total += amp
        amp *= 0.55
        nodes = nodes * 2 + 1
    return out / total


def _swath_mask(size: int, rng: np.random.Generator) -> np.ndarray | None:
    """Nodata where a diagonal swath border cuts a corner (None on about half the dates)."""
    if rng.random() < 0.5:
        return None
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    corner = rng.integers(4)
    if corner & 1:
        xx = 1 - xx
    if corner & 2:
        yy = 1 - yy
    depth = rng.uniform(0.08, 0.22)  # never reaches the central AOI area
    return xx + yy * rng.uniform(0.3, 1.0) < depth


def _write_scene(args: tuple[str, int, list[float], int, int, int, int]) -> None:
    """Write the three bands of one scene (runs in a worker process)."""
    import rasterio
    from affine import Affine
    from rasterio.enums import Resampling

    root, epsg, transform, size, zone_seed, date_seed, _ = args
    land = smooth_noise(size, np.random.default_rng(zone_seed))
    rng = np.random.default_rng(date_seed)
    haze = smooth_noise(size, rng, octaves=3)
    mask = _swath_mask(size, rng)
    gain = rng.uniform(0.85, 1.15)
    profile = {
        "driver": "COG",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint16",
        "crs": f"EPSG:{epsg}",
        "transform": Affine(*transform),
        "nodata": 0,
        "blocksize": 1024,
        "compress": "DEFLATE",
        "predictor": 2,
        "overview_resampling": Resampling.average,
    }
    name = os.path.basename(root)
    for band in BANDS:
        level, contrast = _BAND_LEVEL[band]
        value = level * gain * (1 + 0.45 * contrast * land) + 120 * haze
        value += rng.normal(0, 12, (size, size)).astype(np.float32)
        data = np.clip(value, 1, 65535).astype(np.uint16)
        if mask is not None:
            data[mask] = 0
        tmp = os.path.join(os.path.dirname(root), f".{name}_{band}.tif.tmp")
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
        os.replace(tmp, f"{root}_{band}.tif")


# --------------------------------------------------------------------------- layout


def _grids(spec: Spec) -> dict[int, list[float]]:
    """Affine coefficients of the main and neighbouring grids (centred on the same place)."""
    from pyproj import Transformer

    half = spec.size * RES / 2
    out = {}
    for epsg in (MAIN_EPSG, NEXT_EPSG):
        tr = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True)
        x, y = tr.transform(*CENTRE_LONLAT)
        x0 = round((x - half) / 60) * 60  # on the Sentinel-2 60 m grid, like real tiles
        y1 = round((y + half) / 60) * 60
        out[epsg] = [RES, 0.0, float(x0), 0.0, -RES, float(y1)]
    return out


def _requests(spec: Spec, rng: np.random.Generator) -> tuple[list, list, list]:
    """AOI corners and points in the central part of the main grid."""
    lo, hi = int(spec.size * 0.25), int(spec.size * 0.75) - spec.aoi
    aois = rng.integers(lo, hi, (spec.n_aois, 2)).tolist()
    cross = rng.integers(lo, hi, (spec.n_cross_aois, 2)).tolist()
    grid = _grids(spec)[MAIN_EPSG]
    rc = rng.uniform(lo, hi + spec.aoi, (spec.n_points, 2))
    pts = [[grid[2] + c * RES, grid[5] - r * RES] for r, c in rc]
    return aois, cross, pts


def ensure_data(spec: Spec, *, workers: int | None = None, log: Any = print) -> Manifest:
    """Generate the collection described by ``spec`` unless it is cached.

    Parameters
    ----------
    spec
        What to generate.
    workers
        Processes writing scenes (default: all cores).
    log
        Called with progress messages.

    Returns
    -------
    Manifest
    """
    root = CACHE / f"s2like-{spec.key()}"
    if (root / "manifest.json").exists():
        return Manifest.load(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    grids = _grids(spec)
    start = _dt.datetime(2024, 4, 3, 10, 0, 7)
    scenes, jobs = [], []
    plan = [(MAIN_EPSG, i) for i in range(spec.n_main)] + [
        (NEXT_EPSG, i) for i in range(spec.n_next)
    ]
    for k, (epsg, i) in enumerate(plan):
        zone = "T33TYN" if epsg == MAIN_EPSG else "T34TBT"
        when = start + _dt.timedelta(days=5 * i + (0 if epsg == MAIN_EPSG else 2))
        sid = f"S2B_{zone}_{when:%Y%m%d}"
        scenes.append(
            Scene(
                sid,
                when.isoformat() + "Z",
                epsg,
                grids[epsg],
                spec.size,
                spec.size,
                {b: f"{sid}_{b}.tif" for b in BANDS},
            )
        )
        jobs.append(
            (str(root / sid), epsg, grids[epsg], spec.size, spec.seed + epsg, spec.seed * 7 + k, k)
        )
    log(
        f"generating {len(scenes)} scenes x {len(BANDS)} bands of {spec.size}x{spec.size} in {root}"
    )
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count()) as pool:
        list(pool.map(_write_scene, jobs))
    aois, cross, pts = _requests(spec, rng)
    manifest = Manifest(str(root), asdict(spec), scenes, aois, cross, pts)
    manifest.save()
    return manifest


def stac_items(manifest: Manifest, base_url: str) -> list[dict[str, Any]]:
    """STAC-like item dicts for every scene, assets pointing under ``base_url``.

    Parameters
    ----------
    manifest
        The generated collection.
    base_url
        ``http://127.0.0.1:port/`` or ``s3://bucket/`` (ending in ``/``).

    Returns
    -------
    list of dict
        Items with ``id``, ``properties.datetime``, ``proj:epsg`` and one COG asset per band.
    """
    from pyproj import Transformer

    items = []
    for s in manifest.scenes:
        x0, y0, x1, y1 = s.bounds()
        tr = Transformer.from_crs(f"EPSG:{s.epsg}", "EPSG:4326", always_xy=True)
        lon0, lat0, lon1, lat1 = tr.transform_bounds(x0, y0, x1, y1, densify_pts=21)
        ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
        items.append(
            {
                "type": "Feature",
                "stac_version": "1.0.0",
                "id": s.id,
                "bbox": [lon0, lat0, lon1, lat1],
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {"datetime": s.datetime, "proj:epsg": s.epsg},
                "assets": {
                    b: {
                        "href": base_url + s.files[b],
                        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                        "roles": ["data"],
                    }
                    for b in BANDS
                },
                "links": [],
            }
        )
    return items
