"""Write GeoTIFFs with rasterio for tests, and read back their tile structure.

Everything here is test tooling: :func:`write_tiff` writes one file for any
combination of dtype, codec, predictor, layout, byte order and overviews;
:func:`realistic_data` makes pixel content that looks like imagery (smooth
fields plus noise), so predictors and lossy codecs are exercised the way real
data exercises them; :data:`CASES` is a named matrix of such files for
parametrized oracle tests; :func:`tiff_structure` parses a written file with
async-tiff into the :class:`TileEncoding` / :class:`TileLayout` the read path
uses, and :func:`tile_windows` pairs every stored tile with the pixel window it
covers.

Usage::

    from cogs import CASES, write_tiff, tiff_structure

    @pytest.mark.parametrize("case", CASES, ids=str)
    def test_something(case, tmp_path):
        data = case.write(tmp_path / "x.tif")
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import Resampling

from xarray_rasteret._types import TileEncoding, TileLayout, Window

__all__ = [
    "CASES",
    "Case",
    "TiffStructure",
    "TileRef",
    "read_tile_bytes",
    "realistic_data",
    "tiff_structure",
    "tile_windows",
    "write_tiff",
]

DEFAULT_TRANSFORM = Affine(10.0, 0.0, 500_000.0, 0.0, -10.0, 5_200_000.0)


# --------------------------------------------------------------------------- data


def realistic_data(shape: Sequence[int], dtype: Any, seed: int = 0) -> np.ndarray:
    """Return smooth, noisy, image-like values of ``dtype``.

    A sum of low-frequency waves and a gradient plus Gaussian noise, scaled to a
    good part of the dtype's range (signed types get negative values, 32/64-bit
    integers get values that need their high bytes), so compression, predictors
    and byte order are all exercised.

    Parameters
    ----------
    shape
        ``(height, width)`` or ``(count, height, width)``.
    dtype
        Any numeric NumPy dtype.
    seed
        Seed of the noise and of the per-band phases.

    Returns
    -------
    numpy.ndarray
        Array of ``shape`` and native-order ``dtype``.
    """
    dt = np.dtype(dtype).newbyteorder("=")
    shape = tuple(int(s) for s in shape)
    bands = shape[0] if len(shape) == 3 else 1
    h, w = shape[-2:]
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((bands, h, w), dtype=np.float64)
    for b in range(bands):
        ph = rng.uniform(0, 2 * np.pi, 4)
        # Features of 50-500 pixels, like land cover and relief.
        field_ = (
            0.35 * np.sin(xx / 71.0 + ph[0]) * np.cos(yy / 97.0 + ph[1])
            + 0.25 * np.sin((xx + yy) / 150.0 + ph[2])
            + 0.15 * np.cos(np.hypot(xx - w / 3, yy - h / 2) / 40.0 + ph[3])
            + 0.2 * (xx / max(w, 1) - yy / max(h, 1))
        )
        out[b] = field_ + rng.normal(0.0, 0.002, (h, w))
    # out is roughly in [-1, 1]; map to a range typical for the dtype.
    unit = (np.clip(out, -1.0, 1.0) + 1.0) / 2.0  # [0, 1]
    if dt.kind == "f":
        res = (250.0 + 60.0 * out).astype(dt)
    elif dt.kind == "c":
        res = (out + 1j * out[..., ::-1]).astype(dt)
    elif dt.kind in "ui":
        info = np.iinfo(dt)
        # 8-bit data spans the type; wider data a quarter of it (like 12-14 bit
        # sensors in uint16), still reaching the high bytes, and below zero if signed.
        span = float(info.max) - float(info.min)
        frac = 1.0 if dt.itemsize == 1 else 0.25
        lo = float(info.min) if dt.itemsize == 1 else float(info.min) + 0.1 * span
        if dt.kind == "i" and dt.itemsize > 1:
            lo = -0.1 * span
        hi = lo + frac * span
        # Sensor-like noise of a few counts on top of the smooth field.
        counts = lo + unit * (hi - lo) + rng.normal(0.0, 1.5, unit.shape)
        res = np.floor(np.clip(counts, lo, hi)).astype(dt)
    elif dt.kind == "b":
        res = unit > 0.5
    else:  # pragma: no cover - tests only use numeric types
        raise TypeError(f"no realistic data for dtype {dt}")
    return res if len(shape) == 3 else res[0]


# --------------------------------------------------------------------------- write


def write_tiff(
    path: str | os.PathLike[str],
    *,
    dtype: Any,
    width: int = 300,
    height: int = 200,
    count: int = 1,
    compress: str | None = None,
    predictor: int | None = None,
    tiled: bool = True,
    blockxsize: int = 128,
    blockysize: int = 64,
    interleave: str = "pixel",
    bigtiff: bool = False,
    endianness: str | None = None,
    nodata: float | None = None,
    crs: str | None = "EPSG:32633",
    transform: Affine | None = DEFAULT_TRANSFORM,
    photometric: str | None = None,
    overviews: Sequence[int] = (),
    overview_resampling: Resampling = Resampling.average,
    data: np.ndarray | None = None,
    seed: int = 0,
    holes: bool = False,
    driver: str = "GTiff",
    **creation_options: Any,
) -> np.ndarray:
    """Write a GeoTIFF with rasterio (GDAL) and return the pixels written.

    Parameters
    ----------
    path
        Destination file.
    dtype
        Sample dtype (``"uint8"``, ``"float32"``, ...), native order.
    width, height, count
        Image size and number of bands.
    compress
        GDAL ``COMPRESS`` value (``"DEFLATE"``, ``"LERC_ZSTD"``, ``"JPEG"``, ...)
        or None for uncompressed.
    predictor
        GDAL ``PREDICTOR`` (1, 2 or 3), or None to leave it unset.
    tiled
        Tiled if True, else striped with ``blockysize`` rows per strip.
    blockxsize, blockysize
        Tile size (``blockxsize`` is ignored for strips). With
        ``driver="COG"`` the tile is square of size ``blockxsize``.
    interleave
        ``"pixel"`` (chunky, PlanarConfiguration=1) or ``"band"`` (planar).
    bigtiff
        Write BigTIFF.
    endianness
        ``"BIG"`` or ``"LITTLE"`` (GDAL ``ENDIANNESS``); None is the GDAL default.
    nodata
        Nodata value to record.
    crs, transform
        Georeferencing; both None writes a non-georeferenced TIFF.
    photometric
        GDAL ``PHOTOMETRIC`` (``"RGB"``, ``"YCBCR"``, ``"MINISBLACK"``).
    overviews
        Decimation factors of internal overviews to build (e.g. ``(2, 4)``).
    overview_resampling
        Resampling used for overviews.
    data
        Pixels to write, shape ``(count, height, width)`` or ``(height, width)``;
        default :func:`realistic_data`.
    seed
        Seed for the default data.
    holes
        Punch nodata into the data: a rectangle and scattered pixels set to
        ``nodata`` (NaN for floats without nodata).
    driver
        ``"GTiff"`` or ``"COG"`` (written as GTiff, then copied by the COG driver).
    **creation_options
        Further GDAL creation options (``JPEG_QUALITY=90``, ``MAX_Z_ERROR=0``, ...).

    Returns
    -------
    numpy.ndarray
        The pixels written, shape ``(count, height, width)``. For lossy codecs
        the file holds an approximation of them: compare reads with rasterio.
    """
    dt = np.dtype(dtype)
    if data is None:
        data = realistic_data((count, height, width), dt, seed)
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[np.newaxis]
    count, height, width = data.shape
    if holes:
        fill = nodata if nodata is not None else np.nan
        if np.isnan(fill) and data.dtype.kind != "f":
            raise ValueError("holes=True on integer data needs a nodata value")
        data = data.copy()
        data[:, height // 4 : height // 2, width // 5 : width // 2] = fill
        rng = np.random.default_rng(seed + 1)
        data[:, rng.random((height, width)) < 0.02] = fill
        if count > 1:  # and some holes in one band only
            data[count - 1, rng.random((height, width)) < 0.01] = fill
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dt.name,
        "crs": crs,
        "transform": transform if crs is not None or transform is not None else None,
        "interleave": interleave,
        "tiled": tiled,
        "blockysize": blockysize,
    }
    if tiled:
        profile["blockxsize"] = blockxsize
    if transform is None:
        profile.pop("transform")
    if crs is None:
        profile.pop("crs")
    if compress is not None:
        profile["compress"] = compress
    if predictor is not None:
        profile["predictor"] = predictor
    if nodata is not None:
        profile["nodata"] = nodata
    if photometric is not None:
        profile["photometric"] = photometric
    if bigtiff:
        profile["BIGTIFF"] = "YES"
    if endianness is not None:
        profile["ENDIANNESS"] = endianness
    profile.update(creation_options)

    target = os.fspath(path)
    if driver == "COG":
        # The COG driver only copies; write a plain GTiff next to it first.
        tmp = target + ".src.tif"
        _write_gtiff(tmp, profile, data, (), overview_resampling)
        cog_opts = {
            k: v
            for k, v in profile.items()
            if k
            not in {
                "driver",
                "width",
                "height",
                "count",
                "dtype",
                "crs",
                "transform",
                "interleave",
                "tiled",
                "blockxsize",
                "blockysize",
                "photometric",
                "ENDIANNESS",
            }
        }
        cog_opts["BLOCKSIZE"] = blockxsize
        if overviews:
            cog_opts["OVERVIEW_COUNT"] = len(overviews)
        else:
            cog_opts["OVERVIEWS"] = "NONE"
        rasterio.shutil.copy(tmp, target, driver="COG", **cog_opts)
        os.remove(tmp)
    elif driver == "GTiff":
        _write_gtiff(target, profile, data, overviews, overview_resampling)
    else:
        raise ValueError(f"driver must be 'GTiff' or 'COG', not {driver!r}")
    return data


def _write_gtiff(
    path: str,
    profile: dict[str, Any],
    data: np.ndarray,
    overviews: Sequence[int],
    resampling: Resampling,
) -> None:
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    if overviews:
        with rasterio.open(path, "r+") as ds:
            ds.build_overviews(list(overviews), resampling)


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """One named file of the test matrix: :func:`write_tiff` keyword arguments."""

    name: str
    """Test id."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Arguments for :func:`write_tiff`."""
    lossy: bool = False
    """True if the file holds an approximation of the data (compare with rasterio)."""
    max_abs_diff: int = 0
    """Largest difference from rasterio's pixels to accept (0: exact). Nonzero only
    for YCbCr JPEG, whose chroma upsampling differs between libjpeg builds."""

    def __str__(self) -> str:
        return self.name

    def write(self, path: str | os.PathLike[str], **overrides: Any) -> np.ndarray:
        """Write this case to ``path`` (``overrides`` replace keyword arguments)."""
        return write_tiff(path, **{**self.kwargs, **overrides})


def _case(name: str, lossy: bool = False, max_abs_diff: int = 0, **kwargs: Any) -> Case:
    kwargs.setdefault("dtype", "uint16")
    return Case(name, kwargs, lossy, max_abs_diff)


_INT_TYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64")
_FLOAT_TYPES = ("float32", "float64")

CASES: list[Case] = [
    # codecs, without predictor, on uint16
    _case("none-u16"),
    _case("deflate-u16", compress="DEFLATE"),
    _case("lzw-u16", compress="LZW"),
    _case("packbits-u16", compress="PACKBITS"),
    _case("zstd-u16", compress="ZSTD"),
    _case("lzma-u16", compress="LZMA"),
    _case("lerc-u16", compress="LERC", MAX_Z_ERROR=0),
    _case("lerc_deflate-f32", compress="LERC_DEFLATE", dtype="float32", MAX_Z_ERROR=0),
    _case("lerc_zstd-f32", compress="LERC_ZSTD", dtype="float32", MAX_Z_ERROR=0),
    _case("lerc_lossy-f32", compress="LERC_ZSTD", dtype="float32", MAX_Z_ERROR=0.5, lossy=True),
    _case("lerc-f64-nodata", compress="LERC", dtype="float64", nodata=-9999.0, holes=True),
    _case("lerc-f32-nan", compress="LERC_DEFLATE", dtype="float32", holes=True),
    _case("lerc-u16-nodata", compress="LERC", nodata=0, holes=True),
    _case("lerc-rgb-f32-nan", compress="LERC", dtype="float32", count=3, holes=True),
    _case("deflate-p3-f32-nan", compress="DEFLATE", predictor=3, dtype="float32", holes=True),
    _case("lerc-rgb-u8", compress="LERC_DEFLATE", dtype="uint8", count=3, photometric="RGB"),
    _case("lerc-planar-i16", compress="LERC", dtype="int16", count=2, interleave="band"),
    # predictor 2 on every integer type, predictor 3 on floats
    *[_case(f"deflate-p2-{t}", compress="DEFLATE", predictor=2, dtype=t) for t in _INT_TYPES],
    *[_case(f"deflate-{t}", compress="DEFLATE", dtype=t) for t in _INT_TYPES + _FLOAT_TYPES],
    *[_case(f"deflate-p3-{t}", compress="DEFLATE", predictor=3, dtype=t) for t in _FLOAT_TYPES],
    _case("lzw-p2-i16", compress="LZW", predictor=2, dtype="int16"),
    _case("zstd-p2-u32", compress="ZSTD", predictor=2, dtype="uint32"),
    _case("zstd-p3-f32", compress="ZSTD", predictor=3, dtype="float32"),
    _case("lzma-p3-f64", compress="LZMA", predictor=3, dtype="float64"),
    _case("lzw-p2-f32", compress="LZW", predictor=2, dtype="float32"),
    # big-endian, every codec family that cares about byte order
    *[
        _case(f"be-deflate-p2-{t}", compress="DEFLATE", predictor=2, dtype=t, endianness="BIG")
        for t in ("uint16", "int32", "uint64")
    ],
    *[_case(f"be-none-{t}", dtype=t, endianness="BIG") for t in ("int16", "float32", "float64")],
    _case("be-lzw-f64", compress="LZW", dtype="float64", endianness="BIG"),
    _case("be-zstd-p3-f32", compress="ZSTD", predictor=3, dtype="float32", endianness="BIG"),
    _case("be-deflate-p3-f64", compress="DEFLATE", predictor=3, dtype="float64", endianness="BIG"),
    _case("be-lerc-u16", compress="LERC", dtype="uint16", endianness="BIG"),
    _case("be-lerc_zstd-f32", compress="LERC_ZSTD", dtype="float32", endianness="BIG"),
    _case(
        "be-lerc-rgb-f32-nan",
        compress="LERC",
        dtype="float32",
        count=3,
        holes=True,
        endianness="BIG",
    ),
    _case("be-packbits-i16", compress="PACKBITS", dtype="int16", endianness="BIG"),
    # layouts: chunky, planar, strips, BigTIFF, odd tiles
    _case("rgb-chunky-deflate-p2", compress="DEFLATE", predictor=2, dtype="uint8", count=3),
    _case("chunky4-zstd-p2-i16", compress="ZSTD", predictor=2, dtype="int16", count=4),
    _case("chunky3-deflate-p3-f32", compress="DEFLATE", predictor=3, dtype="float32", count=3),
    _case("planar-deflate-p2-u16", compress="DEFLATE", predictor=2, count=3, interleave="band"),
    _case(
        "planar-lzw-p3-f32",
        compress="LZW",
        predictor=3,
        dtype="float32",
        count=2,
        interleave="band",
    ),
    _case("strips-none-u16", tiled=False, blockysize=48),
    _case(
        "strips-deflate-p2-i32",
        tiled=False,
        blockysize=48,
        compress="DEFLATE",
        predictor=2,
        dtype="int32",
    ),
    _case("strips-rgb-lzw", tiled=False, blockysize=16, compress="LZW", dtype="uint8", count=3),
    _case(
        "strips-planar-zstd",
        tiled=False,
        blockysize=64,
        compress="ZSTD",
        count=2,
        interleave="band",
    ),
    _case("strips-lerc-f32", tiled=False, blockysize=48, compress="LERC", dtype="float32"),
    _case("bigtiff-deflate-u16", compress="DEFLATE", bigtiff=True),
    _case(
        "bigtiff-be-zstd-p2-i16",
        compress="ZSTD",
        predictor=2,
        bigtiff=True,
        dtype="int16",
        endianness="BIG",
    ),
    _case(
        "tile16x256-deflate",
        compress="DEFLATE",
        blockxsize=256,
        blockysize=16,
        width=301,
        height=203,
    ),
    _case(
        "tile-larger-than-image",
        compress="ZSTD",
        blockxsize=512,
        blockysize=256,
        width=100,
        height=70,
    ),
    _case("with-overviews", compress="DEFLATE", predictor=2, overviews=(2, 4)),
    _case(
        "cog-deflate-p2",
        compress="DEFLATE",
        predictor=2,
        driver="COG",
        blockxsize=128,
        width=500,
        height=400,
        overviews=(2,),
    ),
    # image codecs
    _case("jpeg-gray", lossy=True, compress="JPEG", dtype="uint8", JPEG_QUALITY=85),
    _case(
        "jpeg-ycbcr",
        lossy=True,
        max_abs_diff=10,
        compress="JPEG",
        dtype="uint8",
        count=3,
        photometric="YCBCR",
    ),
    _case("jpeg-rgb", lossy=True, compress="JPEG", dtype="uint8", count=3, photometric="RGB"),
    _case(
        "jpeg-planar",
        lossy=True,
        compress="JPEG",
        dtype="uint8",
        count=3,
        interleave="band",
        photometric="RGB",
    ),
    _case(
        "jpeg-ycbcr-strips",
        lossy=True,
        max_abs_diff=10,
        compress="JPEG",
        dtype="uint8",
        count=3,
        photometric="YCBCR",
        tiled=False,
        blockysize=48,
    ),
    _case("webp-rgb", lossy=True, compress="WEBP", dtype="uint8", count=3, WEBP_LEVEL=80),
    _case(
        "webp-rgba",
        lossy=True,
        compress="WEBP",
        dtype="uint8",
        count=4,
        photometric="RGB",
        ALPHA="YES",
    ),
    _case("webp-lossless", compress="WEBP", dtype="uint8", count=3, WEBP_LOSSLESS=True),
]
"""The test matrix: codecs x predictors x dtypes x byte order x layouts."""


# --------------------------------------------------------------------------- read structure


@dataclass(frozen=True)
class TiffStructure:
    """The encoding and tile layouts of one TIFF, as parsed by async-tiff."""

    encoding: TileEncoding
    """How tiles are encoded (full-resolution IFD)."""
    levels: tuple[TileLayout, ...]
    """Full resolution, then each reduced-resolution IFD."""
    big_endian: bool
    """Byte order of the file."""


class _FileStore:
    """A minimal obspec-shaped byte-range store over local files (for async-tiff)."""

    async def get_range_async(
        self, path: str, *, start: int, end: int | None = None, length: int | None = None
    ) -> bytes:
        n = (end - start) if end is not None else length
        with open(path, "rb") as f:
            f.seek(start)
            return f.read(n)

    async def get_ranges_async(
        self,
        path: str,
        *,
        starts: Sequence[int],
        ends: Sequence[int] | None = None,
        lengths: Sequence[int] | None = None,
    ) -> list[bytes]:
        return [
            await self.get_range_async(
                path,
                start=s,
                end=None if ends is None else ends[i],
                length=None if lengths is None else lengths[i],
            )
            for i, s in enumerate(starts)
        ]


_SAMPLE_KIND = {1: "u", 2: "i", 3: "f"}


def tiff_structure(path: str | os.PathLike[str]) -> TiffStructure:
    """Parse a TIFF's header with async-tiff into the read path's types.

    Parameters
    ----------
    path
        A local TIFF file.

    Returns
    -------
    TiffStructure
        Encoding of the full-resolution image and the layout of every level
        (reduced-resolution IFDs that are not masks).
    """
    import async_tiff

    async def _open() -> Any:
        return await async_tiff.TIFF.open(os.fspath(path), store=_FileStore())

    tiff = asyncio.run(_open())
    big = int(tiff.endianness) == 1
    ifds = tiff.ifds
    ifd = ifds[0]
    bits = int(ifd.bits_per_sample[0])
    kind = _SAMPLE_KIND[int(ifd.sample_format[0])]
    # The smallest dtype holding a sample (1-, 4-, 12-bit samples keep their
    # bits_per_sample; the read path rejects them).
    size = next(n for n in (1, 2, 4, 8, 16) if n * 8 >= bits)
    dtype = np.dtype(f"{kind}{size}").newbyteorder(">" if big else "<")
    lerc = ifd.lerc_parameters
    encoding = TileEncoding(
        compression=int(ifd.compression),
        predictor=int(ifd.predictor or 1),
        dtype=dtype.str,
        samples_per_pixel=int(ifd.samples_per_pixel),
        planar=int(ifd.planar_configuration) == 2,
        photometric=int(ifd.photometric_interpretation),
        jpeg_tables=ifd.jpeg_tables,
        lerc_parameters=tuple(int(v) for v in lerc) if lerc else None,
        bits_per_sample=bits,
    )
    levels = []
    for i, d in enumerate(ifds):
        # Keep the full image and its reduced-resolution images, not masks (bit 2).
        if i and (int(d.new_subfile_type or 0) & 4):
            continue
        levels.append(_layout(d))
    return TiffStructure(encoding, tuple(levels), big)


def _layout(ifd: Any) -> TileLayout:
    if ifd.tile_offsets is not None:
        return TileLayout(
            width=int(ifd.image_width),
            height=int(ifd.image_height),
            tile_width=int(ifd.tile_width),
            tile_height=int(ifd.tile_height),
            tile_offsets=np.asarray(ifd.tile_offsets, dtype=np.int64),
            tile_byte_counts=np.asarray(ifd.tile_byte_counts, dtype=np.int64),
            tiled=True,
        )
    rows = ifd.rows_per_strip or ifd.image_height
    return TileLayout(
        width=int(ifd.image_width),
        height=int(ifd.image_height),
        tile_width=int(ifd.image_width),
        tile_height=int(min(rows, ifd.image_height)),
        tile_offsets=np.asarray(ifd.strip_offsets, dtype=np.int64),
        tile_byte_counts=np.asarray(ifd.strip_byte_counts, dtype=np.int64),
        tiled=False,
    )


@dataclass(frozen=True)
class TileRef:
    """One stored tile (or strip): its index, plane and the pixels it covers."""

    index: int
    """Position in ``tile_offsets``."""
    plane: int
    """Sample plane (0 for chunky files)."""
    window: Window
    """Pixels of the image the tile covers, clipped to the image."""
    rows: int
    """Rows stored: the tile height, or the rows present in a striped file's last strip."""
    cols: int
    """Columns stored (the tile width)."""


def tile_windows(layout: TileLayout, encoding: TileEncoding) -> Iterator[TileRef]:
    """Yield every tile of ``layout`` with the window it covers.

    Parameters
    ----------
    layout
        The tile layout of one level.
    encoding
        The file's encoding (for the number of planes).

    Yields
    ------
    TileRef
        In file index order (plane after plane for planar files).
    """
    planes = encoding.samples_per_pixel if encoding.planar else 1
    across, down = layout.tiles_across, layout.tiles_down
    index = 0
    for plane in range(planes):
        for ty in range(down):
            for tx in range(across):
                r0, c0 = ty * layout.tile_height, tx * layout.tile_width
                r1 = min(r0 + layout.tile_height, layout.height)
                c1 = min(c0 + layout.tile_width, layout.width)
                rows = layout.tile_height if layout.tiled else r1 - r0
                yield TileRef(index, plane, Window(r0, r1, c0, c1), rows, layout.tile_width)
                index += 1


def read_tile_bytes(path: str | os.PathLike[str], layout: TileLayout, index: int) -> bytes:
    """Return the stored bytes of tile ``index``."""
    with open(path, "rb") as f:
        f.seek(int(layout.tile_offsets[index]))
        return f.read(int(layout.tile_byte_counts[index]))


def with_datetimes(table: Any, when: dict[str, str]) -> Any:
    """Return a collection table whose ``datetime`` column is set per record id."""
    import pyarrow as pa

    ids = table.column("id").to_pylist()
    values = pa.array([np.datetime64(when[i], "us") for i in ids], pa.timestamp("us"))
    return table.set_column(table.schema.get_field_index("datetime"), "datetime", values)
