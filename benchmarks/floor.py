"""The physical floor of a scenario: what the hardware allows.

``floor = latency + bytes / bandwidth + decode / cores``

* ``latency``: one round trip (everything in flight at once);
* ``bytes``: the compressed bytes of the distinct tiles the request
  intersects (each tile once, even if several windows share it), read from
  the files' tile offsets and byte counts with rasterio (GDAL's
  ``BLOCK_OFFSET_*``/``BLOCK_SIZE_*`` metadata), independently of the library;
  for Build, the header bytes in front of the first tile of any level;
* ``bandwidth``: measured on the loopback server without latency (the best of
  ten whole-file GETs: the first few are slower while the server warms up);
* ``decode``: the time to decode those tiles here with the fastest decoder
  available, divided by the number of cores. It is measured twice:

  - **full-tile** (what a GDAL-class reader can reach, inflating every tile
    it touches whole): ``imagecodecs.deflate_decode`` (libdeflate), then
    ``imagecodecs.delta_decode`` undoing predictor 2;
  - **needed rows** (what a reader can reach that inflates each tile only as
    far as the last row the scenario needs from it): the fastest here of
    libdeflate stopped by a short output buffer (which needs a margin past the
    rows: see ``xarray_rasteret/_read/_inflate.py``), ISA-L's streaming
    inflate (``isal``, if installed) and zlib's, both stopped exactly at the
    rows, then the predictor undone on those rows only. The decoder chosen is
    recorded in :attr:`Floor.needed_decoder`.
"""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine

from .data import Manifest
from .scenarios import Scenario, Unit, pixel_indices

__all__ = ["Floor", "compute_floor", "decode_floor_tile", "measure_bandwidth"]


@dataclass
class Floor:
    """A scenario's floor and its parts."""

    tiles: int
    bytes: int
    latency: float
    transfer: float
    decode: float
    cores: int
    ranges: list[tuple[str, int, int]] = field(default_factory=list, repr=False)
    """The byte ranges the floor counts: (file relative to the data root, offset, length)."""
    shape: tuple[int, int] | None = None
    """The tile shape to decode the ranges as (None for Build: header bytes, nothing to decode)."""
    needed_decode: float | None = None
    """Seconds to decode only the rows each tile is needed for, on one core (None:
    not measured, taken as ``decode``)."""
    needed_decoder: str = "-"
    """The decoder that did it fastest (see the module docstring)."""
    needed_share: float = 1.0
    """The share of the tiles' decoded bytes those rows are."""

    @property
    def seconds(self) -> float:
        """The full-tile floor, seconds."""
        return self.latency + self.transfer + self.decode / self.cores

    @property
    def needed_seconds(self) -> float:
        """The needed-rows floor, seconds."""
        decode = self.decode if self.needed_decode is None else self.needed_decode
        return self.latency + self.transfer + decode / self.cores


def measure_bandwidth(url: str, repeats: int = 10) -> float:
    """Bytes per second of whole-file GETs from ``url`` (best of ``repeats``)."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url) as r:
            n = len(r.read())
        best = max(best, n / (time.perf_counter() - t0))
    return best


_TILE_INDEX: dict[str, tuple[np.ndarray, np.ndarray, int, int, int]] = {}


def _tile_index(path: str) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """Offsets, byte counts (row-major), tile size and tiles across of a file's full resolution."""
    if path not in _TILE_INDEX:
        import rasterio

        with rasterio.open(path) as src:
            th, tw = src.block_shapes[0]
            ny, nx = -(-src.height // th), -(-src.width // tw)
            off = np.zeros(ny * nx, np.int64)
            cnt = np.zeros(ny * nx, np.int64)
            for i in range(ny):
                for j in range(nx):
                    off[i * nx + j] = int(src.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=1))
                    cnt[i * nx + j] = int(src.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=1))
        _TILE_INDEX[path] = (off, cnt, th, tw, nx)
    return _TILE_INDEX[path]


def _header_bytes(path: str) -> int:
    """Bytes in front of the first tile of any level (the header and IFDs of a COG)."""
    import rasterio

    first = os.path.getsize(path)
    with rasterio.open(path) as src:
        levels = len(src.overviews(1))
    for level in range(-1, levels):
        kw = {} if level < 0 else {"overview_level": level}
        with rasterio.open(path, **kw) as src:
            off = src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)
            if off:
                first = min(first, int(off))
    return first


def _needed_tiles(unit: Unit, m: Manifest, th: int, tw: int, nx: int) -> dict[int, int]:
    """Row-major indices of the full-resolution tiles ``unit`` needs, each with its rows needed.

    The rows needed of a tile are counted from its top to the last row any
    window, point or warped pixel of ``unit`` reads in it.
    """
    s = unit.scene
    ny = -(-s.height // th)
    out: dict[int, int] = {}

    def need(tile: int, rows: int) -> None:
        out[tile] = max(out.get(tile, 0), rows)

    if unit.kind in ("whole", "profile"):
        return {t: th for t in range(ny * nx)}
    if unit.kind == "windows":
        for r, c, h, w in unit.windows:
            r0, r1 = max(r, 0), min(r + h, s.height)
            c0, c1 = max(c, 0), min(c + w, s.width)
            for i in range(r0 // th, (r1 - 1) // th + 1):
                for j in range(c0 // tw, (c1 - 1) // tw + 1):
                    need(i * nx + j, min(r1 - i * th, th))
        return out
    if unit.kind == "sample":
        assert unit.points is not None
        rows, cols = pixel_indices(m, unit.points, s)
        ok = (rows >= 0) & (rows < s.height) & (cols >= 0) & (cols < s.width)
        _need_pixels(need, rows[ok], cols[ok], th, tw, nx)
        return out
    if unit.kind == "warp":
        from pyproj import Transformer

        tr = Transformer.from_crs("EPSG:32633", f"EPSG:{s.epsg}", always_xy=True)
        inv = ~Affine(*s.transform)
        for t, h, w in unit.warps:
            jj, ii = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
            x, y = t * (jj, ii)
            cols, rows = inv * tr.transform(x, y)
            rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
            ok = (rows >= 0) & (rows < s.height) & (cols >= 0) & (cols < s.width)
            _need_pixels(need, rows[ok], cols[ok], th, tw, nx)
        return out
    raise ValueError(unit.kind)


def _need_pixels(need, rows: np.ndarray, cols: np.ndarray, th: int, tw: int, nx: int) -> None:
    """Call ``need(tile, rows)`` for the tiles of these pixels, with the lowest row of each."""
    tiles = (rows // th) * nx + cols // tw
    order = np.lexsort((rows % th, tiles))
    last = np.r_[tiles[order][1:] != tiles[order][:-1], True]
    for t, r in zip(tiles[order][last].tolist(), (rows % th)[order][last].tolist(), strict=True):
        need(t, r + 1)


def decode_floor_tile(blob: bytes, out: np.ndarray) -> None:
    """Decode one stored tile into ``out`` (uint16, the tile's shape) the fastest way here.

    ``imagecodecs.deflate_decode`` (libdeflate), then ``imagecodecs.delta_decode``
    undoing predictor 2.
    """
    import imagecodecs

    raw = imagecodecs.deflate_decode(blob, out=out.nbytes)
    arr = np.frombuffer(raw, np.uint16).reshape(out.shape)
    imagecodecs.delta_decode(arr, axis=-1, out=out)


def _decode_seconds(blobs: list[bytes], shape: tuple[int, int], repeats: int) -> float:
    best = float("inf")
    out = np.empty(shape, np.uint16)
    for _ in range(repeats):
        t0 = time.perf_counter()
        for b in blobs:
            decode_floor_tile(b, out)
        best = min(best, time.perf_counter() - t0)
    return best


# libdeflate writes only final bytes up to this far before the end of a buffer
# that is too short (xarray_rasteret/_read/_inflate.py explains it).
_LIBDEFLATE_MARGIN = 65535 + 258 + 1024


Inflate = Callable[[bytes, np.ndarray, int], None]


def _prefix_decoders() -> dict[str, Inflate]:
    """Inflate the first ``n`` bytes of a zlib stream into a uint8 buffer, by library."""
    import zlib

    import imagecodecs

    def libdeflate(blob: bytes, buf: np.ndarray, n: int) -> None:
        if n + _LIBDEFLATE_MARGIN >= buf.size:
            imagecodecs.deflate_decode(blob, out=buf)
            return
        try:
            imagecodecs.deflate_decode(blob, out=buf[: n + _LIBDEFLATE_MARGIN])
        except imagecodecs.DeflateError:
            pass  # out of room: the first n bytes are final

    def streaming(module: Any) -> Inflate:
        def inflate(blob: bytes, buf: np.ndarray, n: int) -> None:
            buf[:n] = np.frombuffer(module.decompressobj().decompress(blob, n), np.uint8)

        return inflate

    decoders: dict[str, Inflate] = {
        "libdeflate (short buffer)": libdeflate,
        "zlib (streaming)": streaming(zlib),
    }
    try:
        from isal import isal_zlib
    except ImportError:
        pass
    else:
        decoders["ISA-L (streaming)"] = streaming(isal_zlib)
    return decoders


def _needed_decode_seconds(
    blobs: list[bytes], rows: list[int], shape: tuple[int, int], repeats: int
) -> tuple[float, str]:
    """The fastest decode of the needed rows of every tile, and whose it is."""
    import imagecodecs

    th, tw = shape
    buf = np.empty(th * tw, np.uint16)
    raw = buf.view(np.uint8)
    timings = {}
    for name, inflate in _prefix_decoders().items():
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for blob, r in zip(blobs, rows, strict=True):
                inflate(blob, raw, r * tw * 2)
                part = buf[: r * tw].reshape(r, tw)
                imagecodecs.delta_decode(part, axis=-1, out=part)
            best = min(best, time.perf_counter() - t0)
        timings[name] = best
    name = min(timings, key=timings.__getitem__)
    others = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in timings.items() if k != name)
    return timings[name], f"{name}; {others}"


def compute_floor(scenario: Scenario, m: Manifest, latency: float, bandwidth: float) -> Floor:
    """The physical floor of ``scenario`` (see the module docstring)."""
    cores = os.cpu_count() or 1
    total_bytes = 0
    blobs: list[bytes] = []
    rows: list[int] = []
    ranges: list[tuple[str, int, int]] = []
    shape = (1024, 1024)
    ntiles = 0
    for unit in scenario.units:
        path = os.path.join(m.root, unit.file)
        off, cnt, th, tw, nx = _tile_index(path)
        shape = (th, tw)
        if unit.kind == "profile":
            header = _header_bytes(path)
            ranges.append((unit.file, 0, header))
            total_bytes += header
            continue
        needed = _needed_tiles(unit, m, th, tw, nx)
        ntiles += len(needed)
        with open(path, "rb") as f:
            for t in sorted(needed):
                f.seek(int(off[t]))
                blobs.append(f.read(int(cnt[t])))
                rows.append(needed[t])
                ranges.append((unit.file, int(off[t]), int(cnt[t])))
                total_bytes += int(cnt[t])
    floor = Floor(
        ntiles, total_bytes, latency, total_bytes / bandwidth, 0.0, cores, ranges,
        shape if blobs else None,
    )  # fmt: skip
    if blobs:
        repeats = 3 if len(blobs) < 64 else 1
        floor.decode = _decode_seconds(blobs, shape, repeats)
        floor.needed_decode, floor.needed_decoder = _needed_decode_seconds(
            blobs, rows, shape, repeats
        )
        floor.needed_share = sum(rows) / (len(rows) * shape[0])
    return floor
