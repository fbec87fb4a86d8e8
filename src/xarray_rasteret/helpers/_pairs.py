"""Plan and run the reads of the AOI helpers: geometries x records x bands, one read.

For every geometry and every record whose footprint it intersects, the
geometry's bounds in the record's CRS give a pixel window (snapped outwards,
clipped to the image, as ``rasterio.mask.mask(crop=True)``). All windows of
all bands go to :func:`~xarray_rasteret._read.fetch.read_into` at once, so a tile
shared by two AOIs is fetched and decoded once; then pixels outside the
geometry are set to nodata (rasterio ``geometry_mask`` semantics).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely
from affine import Affine

from .._arguments import checked_max_concurrent
from .._lazy.bands import band_sources, resolve_bands, signed_options
from .._lazy.internal_masks import honoured
from .._read.failures import checked_on_error
from .._read.schedule import read_then
from .._read.tasks import Group, ReadOptions, ReadTask
from .._sync import sync
from .._types import RasterSource, Window
from ..collection import Collection
from ..data_sources import DataSource
from ..errors import AOIOutsideDataError
from ..geo.aoi import AOIs, to_crs
from ..geo.crs import as_crs, crs_label
from ..geo.grid import RasterGrid
from ..geo.rasterize import geometry_mask
from ._reads import BandRead, PairRead
from ._warp import regrid_pairs, warp_tasks

__all__ = ["band_sources", "plan_pairs", "read_aois", "resolve_bands"]

_CRS84 = as_crs("OGC:CRS84")


def _place(grid: RasterGrid, geom: shapely.Geometry) -> tuple[Window, Affine] | None:
    """The window of ``grid`` covering ``geom`` and its transform; None if they miss."""
    if geom.is_empty:
        return None
    window = grid.clip(grid.window_for_bounds(geom.bounds))
    return None if window is None else (window, grid.crop(window).transform)


def plan_pairs(
    collection: Collection,
    aois: AOIs,
    assets: dict[str, str],
    source: DataSource | None,
) -> list[PairRead]:
    """Every (geometry, record) pair whose footprint and raster intersect, with empty outputs."""
    footprints = list(collection.geometries)
    in_crs84 = to_crs(aois.geometries, aois.crs, _CRS84)
    tree = shapely.STRtree(footprints)
    g_idx, r_idx = tree.query(in_crs84, predicate="intersects")
    # The helpers return stored values: internal masks are not applied (nor fetched).
    per_band = {b: honoured(s, False) for b, s in band_sources(collection, assets, source).items()}
    firsts = next(iter(per_band.values()))
    # Record-major, as rasteret orders its outputs (records, then geometries in each).
    hits = [(gi, ri) for ri, gi in sorted(zip(r_idx.tolist(), g_idx.tolist(), strict=True))]
    # Each geometry in each records' CRS, every geometry of a CRS in one transformation.
    wanted: dict[str | None, set[int]] = defaultdict(set)
    for gi, ri in hits:
        wanted[firsts[ri].crs].add(gi)
    in_crs: dict[tuple[int, str | None], shapely.Geometry] = {}
    for crs, indices in wanted.items():
        order = sorted(indices)
        dst = as_crs(crs) if crs else aois.crs
        moved = to_crs([aois.geometries[gi] for gi in order], aois.crs, dst)
        in_crs.update(((gi, crs), g) for gi, g in zip(order, moved, strict=True))
    # The records of a time series share their grid: one window per (geometry, grid).
    grids = _grid_ids(per_band)
    placed: dict[tuple[int, int], tuple[Window, Affine] | None] = {}
    planned = []
    for gi, ri in hits:
        geom = in_crs[(gi, firsts[ri].crs)]
        windows = {}
        for band, sources in per_band.items():
            key = (gi, grids[band][ri])
            if key not in placed:
                src = sources[ri]
                placed[key] = _place(RasterGrid.of(src), geom)
            found = placed[key]
            if found is None:
                break
            windows[band] = found
        else:
            planned.append((gi, ri, geom, windows))
    outputs = iter(_empty_outputs(
        [(w.shape, per_band[b][ri].dtype) for _, ri, _, ws in planned for b, (w, _) in ws.items()]
    ))
    pairs = []
    for gi, ri, geom, windows in planned:
        reads = {}
        for band, (window, transform) in windows.items():
            src = per_band[band][ri]
            reads[band] = BandRead(
                src, window, transform, next(outputs), src.fill, src.transform,
                (window.row_start, window.col_start),
            )
        pairs.append(PairRead(gi, ri, geom, firsts[ri].crs, reads))
    return pairs


def _grid_ids(per_band: dict[str, list[RasterSource]]) -> dict[str, list[int]]:
    """Each band's records numbered by grid (CRS, transform, size): equal grids, equal ids.

    Hashing a transform costs microseconds; this hashes one per record and band
    instead of one per (geometry, record, band).
    """
    ids: dict[tuple[Any, ...], int] = {}
    return {
        band: [
            ids.setdefault(
                (s.crs, s.transform, s.levels[0].width, s.levels[0].height), len(ids)
            )
            for s in sources
        ]
        for band, sources in per_band.items()
    }


def _empty_outputs(specs: list[tuple[tuple[int, int], np.dtype]]) -> list[np.ndarray]:
    """An empty array per ``(shape, dtype)``: slices of one array per distinct spec.

    One allocation instead of one per window (a 256 x 256 uint16 window is
    exactly glibc's mmap threshold, so each would be an mmap and, once freed,
    an munmap). The read writes every pixel.
    """
    counts: dict[tuple[tuple[int, int], np.dtype], int] = defaultdict(int)
    for spec in specs:
        counts[spec] += 1
    blocks = {spec: iter(np.empty((n, *spec[0]), spec[1])) for spec, n in counts.items()}
    return [next(blocks[spec]) for spec in specs]


def read_aois(
    collection: Collection,
    aois: AOIs,
    bands: Sequence[str],
    *,
    data_source: str | DataSource | None = None,
    sign: Callable[[str], str] | None = None,
    all_touched: bool = False,
    options: ReadOptions | None = None,
    progress: bool = False,
    target_crs: Any = None,
    stack: bool = False,
) -> tuple[list[PairRead], np.ndarray | None]:
    """Read every band of every (geometry, record) pair in one concurrent read, masked.

    With ``target_crs``, each pair is resampled (nearest) onto a grid of that
    CRS covering its geometry (see :mod:`._warp`); else it is read on the
    record's own grid. With ``stack``, every output is a slice of one
    ``[pair, band, y, x]`` array, returned too (ragged shapes: ValueError, before
    any I/O).

    Raises
    ------
    AOIOutsideDataError
        If no geometry intersects any record.
    """
    assets, source = resolve_bands(collection, bands, data_source)
    options = signed_options(options or ReadOptions(), sign, source)
    pairs = plan_pairs(collection, aois, assets, source)
    if not pairs:
        raise AOIOutsideDataError(
            f"none of the {len(aois.geometries)} geometries (bounds "
            f"{_total_bounds(aois)} in {crs_label(aois.crs)}) intersects the data of "
            f"the {len(collection)} records; check geometry_crs and the filters"
        )
    regridded = None
    if target_crs is not None:
        regridded = regrid_pairs(pairs, aois, target_crs)
    # Before any I/O: ragged shapes raise here, and reads write into the stack.
    stacked = stack_outputs(pairs, list(assets)) if stack else None
    if regridded is None:
        tasks = [
            ReadTask(r.source, 0, r.window, r.data, fill=r.fill)
            for p in pairs
            for r in p.bands.values()
        ]
        run_reads([(tasks, None)], options, progress=progress, what="tiles")
    else:
        # Records on the target grid's lattice are read while the others are
        # planned; each of those is resampled as soon as its own tiles are in.
        direct, plan_warps = warp_tasks(regridded, options)
        run_reads(direct, options, progress=progress, what="tiles", more=plan_warps)
    # Records on one grid share masks: compute each (geometry, window) mask once,
    # and remember the windows the geometry covers whole (nothing to mask).
    masks: dict[tuple[Any, ...], np.ndarray | None] = {}
    for pair in pairs:
        for r in pair.bands.values():
            key = (pair.geometry_index, pair.crs, r.transform, r.data.shape)
            if key not in masks:
                masks[key] = _outside_mask(pair.geometry, r.transform, r.data.shape, all_touched)
            outside = masks[key]
            if outside is not None:
                r.data[outside] = r.fill
    if stack and stacked is None:
        stacked = stack_outputs(pairs, list(assets), copy=True)
    return pairs, stacked


def _outside_mask(
    geom: shapely.Geometry, transform: Affine, shape: tuple[int, ...], all_touched: bool
) -> np.ndarray | None:
    """The pixels of a window outside ``geom``; None when there are none.

    A geometry covering the window shrunk by a quarter pixel on each side (a
    bounding box, typically) covers every pixel centre and touches every
    pixel: no mask to compute.
    """
    h, w = shape[-2], shape[-1]
    t = transform
    x0, x1 = sorted((t.c + 0.25 * t.a, t.c + (w - 0.25) * t.a))
    y0, y1 = sorted((t.f + 0.25 * t.e, t.f + (h - 0.25) * t.e))
    if shapely.covers(geom, shapely.box(x0, y0, x1, y1)):
        return None
    mask = geometry_mask([geom], out_shape=(h, w), transform=t, all_touched=all_touched)
    return mask if mask.any() else None


def stack_outputs(
    pairs: list[PairRead], bands: list[str], *, copy: bool = False
) -> np.ndarray | None:
    """One ``[pair, band, y, x]`` array.

    Unless ``copy``, the pairs' (unread) outputs become its slices, so the read
    writes straight into it; None when the bands' dtypes differ (then stack a
    copy, converted, once they are read).

    Raises
    ------
    ValueError
        If the windows differ in shape (they cannot stack).
    """
    shapes = {r.data.shape for p in pairs for r in p.bands.values()}
    if len(shapes) > 1:
        raise ValueError(
            f"the windows have different shapes {sorted(shapes)}, so they do not stack into one "
            "array; use get_xarray or get_gdf, or pass geometries of one size in one CRS"
        )
    dtypes = {r.data.dtype for p in pairs for r in p.bands.values()}
    if not copy and len(dtypes) > 1:
        return None
    out = np.empty((len(pairs), len(bands), *shapes.pop()), dtype=np.result_type(*dtypes))
    for i, pair in enumerate(pairs):
        for j, band in enumerate(bands):
            r = pair.bands[band]
            if copy:
                out[i, j] = r.data
            else:
                r.data = out[i, j]  # the read writes straight into the stacked array
    return out


def run_reads(
    groups: Sequence[Group],
    options: ReadOptions | None,
    *,
    progress: bool,
    what: str,
    more: Callable[[], Sequence[Group]] | None = None,
) -> None:
    """Run ``(tasks, then)`` groups (and ``more``) through :func:`read_then`, with a tqdm bar."""
    if not progress:
        sync(read_then(groups, options, more=more))
        return
    from tqdm.auto import tqdm

    with tqdm(desc=f"reading {what}", unit="tile") as bar:

        def on_tile(done: int, total: int) -> None:
            bar.total = total
            bar.update(done)

        sync(read_then(groups, options, on_tile=on_tile, more=more))


def _total_bounds(aois: AOIs) -> tuple[float, ...]:
    return tuple(round(float(v), 6) for v in shapely.total_bounds(aois.geometries))


def read_options(
    max_concurrent: int, backend: Any, storage_options: dict | None, on_error: str = "raise"
) -> ReadOptions:
    """The ReadOptions of a helper call."""
    return ReadOptions(
        max_concurrent=checked_max_concurrent(max_concurrent),
        backend=backend,
        storage_options=dict(storage_options or {}),
        on_error=checked_on_error(on_error),
    )
