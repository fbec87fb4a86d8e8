"""The in-memory facts a read needs, shared by every layer.

A :class:`RasterSource` is one logical band of one record: where its bytes
live, how its tiles are encoded and where each tile sits in the file, for the
full-resolution image and each overview. Collections (GeoParquet) are
converted to and from these; the read path only ever sees these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from affine import Affine

__all__ = ["RasterSource", "TileEncoding", "TileLayout", "Window"]


@lru_cache(maxsize=64)
def _native(stored: str) -> np.dtype:
    return np.dtype(stored).newbyteorder("=")


@dataclass(frozen=True)
class Window:
    """A half-open pixel window ``[row_start, row_stop) x [col_start, col_stop)``.

    Bounds may lie outside the image (negative or past its size): such pixels
    are filled, never read.
    """

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int

    @property
    def height(self) -> int:
        """Number of rows."""
        return self.row_stop - self.row_start

    @property
    def width(self) -> int:
        """Number of columns."""
        return self.col_stop - self.col_start

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """``(row_start, row_stop, col_start, col_stop)``."""
        return (self.row_start, self.row_stop, self.col_start, self.col_stop)

    def relative_to(self, row: int, col: int) -> Window:
        """The same pixels, in the frame whose pixel ``(0, 0)`` is ``(row, col)`` of this one's."""
        return Window(self.row_start - row, self.row_stop - row, self.col_start - col,
                      self.col_stop - col)

    def intersection(self, other: Window) -> Window | None:
        """The pixels in both windows (None when they share none)."""
        r0, r1 = max(self.row_start, other.row_start), min(self.row_stop, other.row_stop)
        c0, c1 = max(self.col_start, other.col_start), min(self.col_stop, other.col_stop)
        if r0 >= r1 or c0 >= c1:
            return None
        return Window(r0, r1, c0, c1)


@dataclass(frozen=True)
class TileEncoding:
    """How the tiles (or strips) of one TIFF image are encoded."""

    compression: int
    """TIFF Compression tag value (1 none, 5 LZW, 7 JPEG, 8 deflate, 50000 zstd, ...)."""
    predictor: int
    """TIFF Predictor: 1 none, 2 horizontal differencing, 3 floating point."""
    dtype: str
    """NumPy dtype string of one sample *as stored*, with byte order (``'<u2'``, ``'>f4'``)."""
    samples_per_pixel: int = 1
    """Samples in each pixel of the file (3 for RGB)."""
    planar: bool = False
    """True for PlanarConfiguration=2 (one plane of tiles per sample)."""
    photometric: int = 1
    """TIFF PhotometricInterpretation (1 BlackIsZero, 2 RGB, 6 YCbCr, ...)."""
    jpeg_tables: bytes | None = None
    """Shared JPEG quantization and Huffman tables (JPEGTables tag), if any."""
    lerc_parameters: tuple[int, ...] | None = None
    """LercParameters tag: (version, additional compression), if LERC."""
    bits_per_sample: int | None = None
    """Bits of one sample; None when it is the dtype's size."""
    fill_order: int = 1
    """TIFF FillOrder: 1 (most significant bit first, the default) or 2 (bits of every
    stored byte reversed, which libtiff undoes before any codec sees them)."""
    ycbcr: tuple[float, ...] | None = None
    """YCbCr outside JPEG (Photometric 6, converted to RGB as libtiff does): the
    YCbCrSubSampling (horizontal, vertical), the 3 YCbCrCoefficients and the 6
    ReferenceBlackWhite values (each as the float32 libtiff holds), 11 numbers."""


@dataclass(frozen=True)
class TileLayout:
    """Where the tiles of one image (full resolution or one overview) are in the file.

    Striped (untiled) TIFFs are described the same way: each strip is a tile of
    ``tile_width = width`` and ``tile_height = rows_per_strip``.
    """

    width: int
    """Image width in pixels."""
    height: int
    """Image height in pixels."""
    tile_width: int
    """Tile width in pixels (the image width for strips)."""
    tile_height: int
    """Tile height in pixels (rows per strip for strips)."""
    tile_offsets: np.ndarray
    """int64 byte offset of each tile, row-major; for planar files plane after plane."""
    tile_byte_counts: np.ndarray
    """int64 byte count of each tile (0 with offset 0 marks a sparse tile)."""
    tiled: bool = True
    """False for a striped TIFF."""

    @property
    def tiles_across(self) -> int:
        """Number of tile columns."""
        return -(-self.width // self.tile_width)

    @property
    def tiles_down(self) -> int:
        """Number of tile rows."""
        return -(-self.height // self.tile_height)


@dataclass(frozen=True)
class RasterSource:
    """One logical band of one record: everything a read of it needs, no I/O."""

    href: str
    """Location of the TIFF: a local path, ``file://``, ``http(s)://`` or ``s3://`` URL."""
    transform: Affine
    """Affine transform of the full-resolution image (PixelIsArea, GDAL convention)."""
    crs: str | None
    """CRS as WKT or an authority code (``'EPSG:32633'``); None if not georeferenced."""
    encoding: TileEncoding
    """How tiles are encoded."""
    levels: tuple[TileLayout, ...]
    """Level 0 is full resolution, then the overviews from finest to coarsest."""
    band_index: int = 0
    """Which sample of the file this band is (0-based)."""
    nodata: float | None = None
    """The file's nodata value (GDAL_NODATA), if any."""
    scale: float = 1.0
    """Scale to apply to the stored values (GDAL metadata), for mask_and_scale."""
    offset: float = 0.0
    """Offset to apply after scaling."""
    size: int | None = None
    """Size of the object in bytes when indexed (staleness check)."""
    etag: str | None = None
    """ETag of the object when indexed, where the store has one."""
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)
    """Anything else recorded (not used by the read path)."""
    mask: RasterSource | None = None
    """The file's internal per-dataset mask (GDAL's mask IFDs: 0 masks a pixel), as a
    one-sample source of the same file and grid whose levels are those of this source
    that have a mask, in the same order (:meth:`mask_level` pairs them); None: none."""

    def mask_level(self, level: int) -> int | None:
        """The level of :attr:`mask` of the size of this source's ``level`` (None: none)."""
        if self.mask is None:
            return None
        lv = self.levels[level]
        size = (lv.width, lv.height)
        return next((i for i, m in enumerate(self.mask.levels) if (m.width, m.height) == size),
                    None)

    @property
    def dtype(self) -> np.dtype:
        """The native-byte-order dtype that reads return."""
        return _native(self.encoding.dtype)

    @property
    def fill(self) -> float:
        """Value of pixels outside the image and in sparse tiles: nodata, else 0 (as GDAL)."""
        return self.nodata if self.nodata is not None else 0

    def level_transform(self, level: int) -> Affine:
        """Affine transform of an overview level (GDAL scales by the size ratio)."""
        if level == 0:
            return self.transform
        base, lv = self.levels[0], self.levels[level]
        return self.transform @ Affine.scale(base.width / lv.width, base.height / lv.height)
