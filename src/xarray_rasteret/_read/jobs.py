"""The tiles of a read: what each is wanted for, decoded, and pasted into the outputs.

A :class:`TileJob` is one stored tile and every (task, sample) that wants a
piece of it; :func:`decode` decodes it (into a reused per-thread buffer, or
straight into the one output it lies wholly inside: :func:`direct_target`)
and :func:`paste` copies
each consumer's piece. Pure CPU work, run in the decode threads by
:mod:`.fetch`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .._types import RasterSource
from ..storage import redact_url
from ._shared import Shared
from ._tile_cache import Key
from .codecs import PREDICTED_CODECS
from .decode import decode_tile, decodes_into
from .tasks import ReadTask

__all__ = ["Direct", "TileJob", "decode", "direct_target", "paste"]


@dataclass
class TileJob:
    """One stored tile and every (task, sample) that wants a piece of it."""

    source: RasterSource
    level: int
    row: int
    col: int
    start: int
    end: int
    consumers: list[tuple[ReadTask, int]] = field(default_factory=list)
    shared: Shared[TileJob] | None = None
    """Set when this read fetches the tile for other concurrent reads too."""

    def cache_key(self) -> Key | None:
        """The tile's key in the decoded-tile cache, if it holds samples of several bands."""
        src = self.source
        if src.encoding.planar or src.encoding.samples_per_pixel < 2:
            return None
        return (src.href, self.start, self.end, src.size, src.etag)

    def samples(self) -> set[int]:
        return {sample for _, sample in self.consumers}

    def rows_wanted(self) -> int:
        """How many rows of the tile, from its top, the consumers' windows reach."""
        layout = self.source.levels[self.level]
        top = self.row * layout.tile_height
        bottom = min(top + layout.tile_height, layout.height)
        return max(min(bottom, t.window.row_stop) - top for t, _ in self.consumers)


# Each decode thread decodes its tiles into one reused buffer: a fresh
# multi-megabyte array per tile costs a page fault per 4 KiB page. Tiles larger
# than this are decoded into fresh arrays, so a pool of many threads keeps at
# most this much each (1024 x 1024 float32 tiles fit).
_scratch = threading.local()
_SCRATCH_MAX = 4 * 2**20


def _scratch_buffer(shape: tuple[int, int, int], dtype: np.dtype) -> np.ndarray | None:
    nbytes = shape[0] * shape[1] * shape[2] * dtype.itemsize
    if nbytes > _SCRATCH_MAX:
        return None
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _scratch.buf = np.empty(nbytes, np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


def _stored_rows(job: TileJob) -> int:
    """The rows the tile is stored with: strips only the rows they hold, tiles always all."""
    layout = job.source.levels[job.level]
    th = layout.tile_height
    return th if layout.tiled else min(th, layout.height - job.row * th)


@dataclass(frozen=True)
class Direct:
    """Rows ``[first, stop)`` of a tile, each wanted whole across by the tile's one reader."""

    first: int
    stop: int
    target: np.ndarray
    """Where they go: the reader's output, shape ``(stop - first, tile width, 1)``."""
    whole: bool
    """The target is contiguous and holds every stored row: decode the tile into it."""


def direct_target(job: TileJob) -> Direct | None:
    """Where the tile can be finished straight in its one reader's output, that part.

    Two cases skip the scratch buffer's copy into the output. A tile wholly
    inside an output as wide as it is decoded into the output (a deflate or LZW
    stream is written row after row, so its rows must be contiguous). Rows of a
    tile that cross the output whole, of a horizontal-predictor tile, are
    inflated into the scratch buffer and the predictor is undone from there into
    the output (the pass that would otherwise be a copy).
    """
    if len(job.consumers) != 1:
        return None
    task, sample = job.consumers[0]
    src = job.source
    enc = src.encoding
    layout = src.levels[job.level]
    stored, tw = _stored_rows(job), layout.tile_width
    top, left = job.row * layout.tile_height, job.col * tw
    w, out = task.window, task.out
    r0, r1 = max(top, w.row_start), min(top + stored, w.row_stop, layout.height)
    if not (
        r0 < r1
        and sample == 0
        and (enc.planar or enc.samples_per_pixel == 1)
        and decodes_into(enc)
        and w.col_start <= left
        and left + tw <= min(w.col_stop, layout.width)
        and out.ndim == 2
        and out.dtype == np.dtype(enc.dtype).newbyteorder("=")
        and out.flags.writeable
    ):
        return None
    cols = left - w.col_start
    target = out[r0 - w.row_start : r1 - w.row_start, cols : cols + tw, np.newaxis]
    if r0 == top and r1 == top + stored and target.flags.c_contiguous:
        return Direct(0, stored, target, whole=True)
    if enc.predictor == 2 and enc.compression in PREDICTED_CODECS:
        return Direct(r0 - top, r1 - top, target, whole=False)
    return None


def decode(
    job: TileJob, data: memoryview, rows_needed: int, direct: Direct | None = None
) -> np.ndarray:
    """The tile, its first ``rows_needed`` rows at least decoded.

    With ``direct`` (see :func:`direct_target`), its rows are finished in the
    output and ``direct.target`` is returned. Otherwise, where the codec
    decodes into a buffer, into this thread's scratch buffer: valid until this
    thread decodes again.
    """
    src = job.source
    layout = src.levels[job.level]
    tw = layout.tile_width
    rows = _stored_rows(job)
    enc = src.encoding
    out = finish = None
    if direct is not None and direct.whole:
        out = direct.target
    elif decodes_into(enc):
        samples = 1 if enc.planar else enc.samples_per_pixel
        out = _scratch_buffer((rows, tw, samples), np.dtype(enc.dtype).newbyteorder("="))
        if direct is not None:
            rows_needed, finish = direct.stop, (direct.first, direct.target)
    try:
        tile = decode_tile(data, enc, rows, tw, out=out, rows_needed=rows_needed, finish=finish)
    except Exception as e:
        e.add_note(
            f"while decoding tile (row {job.row}, col {job.col}) of {redact_url(src.href)}"
        )
        raise
    return tile


def paste(job: TileJob, tile: np.ndarray) -> None:
    layout = job.source.levels[job.level]
    th, tw = layout.tile_height, layout.tile_width
    top, left = job.row * th, job.col * tw
    rows = tile.shape[0]
    for task, sample in job.consumers:
        w = task.window
        r0 = max(top, w.row_start, 0)
        r1 = min(top + rows, w.row_stop, layout.height)
        c0 = max(left, w.col_start, 0)
        c1 = min(left + tw, w.col_stop, layout.width)
        if r0 >= r1 or c0 >= c1:
            continue
        task.out[r0 - w.row_start : r1 - w.row_start, c0 - w.col_start : c1 - w.col_start] = tile[
            r0 - top : r1 - top, c0 - left : c1 - left, sample
        ]
