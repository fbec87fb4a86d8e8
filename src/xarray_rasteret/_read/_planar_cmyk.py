"""Planar 8-bit CMYK read as GDAL reads it: RGBA bands, each from two ink planes.

GDAL's RGBA interface (libtiff's ``TIFFRGBAImage``) converts CMYK whether the
inks are chunky or planar. A chunky tile holds every ink of its pixels, so
:mod:`._samples` converts it as it is decoded; in a planar file, red needs the
cyan and black planes, green magenta and black, blue yellow and black, which
are different stored tiles. :func:`expand` therefore replaces each such read
task by reads of the raw ink planes it needs (the planner fetches and decodes a
tile shared by several of them once) and, when both are in, combines them into
the task's ``out`` by the formula of chunky CMYK; alpha is 255.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from .._types import RasterSource, TileEncoding, TileLayout
from . import _samples
from .plan import TileRef, tiles_for_window
from .tasks import ReadTask

__all__ = ["expand", "is_planar_cmyk"]

_BLACK = 3
FillUncovered = Callable[[ReadTask, TileLayout, list[TileRef]], None]


def is_planar_cmyk(enc: TileEncoding) -> bool:
    """Planar 8-bit CMYK: read as RGBA, as GDAL does (libtiff: exactly 4 inks)."""
    return (
        enc.planar
        and enc.photometric == _samples.CMYK
        and np.dtype(enc.dtype) == np.uint8
        and enc.samples_per_pixel == 4
        and enc.bits_per_sample in (None, 8)
    )


@dataclass
class _Pending:
    """One RGBA task waiting for its ink and black planes."""

    task: ReadTask
    ink: ReadTask
    black: ReadTask
    left: int = 2


def expand(
    tasks: Sequence[ReadTask],
    on_done: Callable[[ReadTask], None] | None,
    fill_uncovered: FillUncovered,
) -> tuple[Sequence[ReadTask], Callable[[ReadTask], None] | None, list[ReadTask]]:
    """Replace each planar-CMYK task by reads of its raw ink planes.

    Returns the tasks to read instead of ``tasks`` (others pass through
    unchanged), the ``on_done`` to read them with (it combines the planes, then
    reports the original task), and the tasks already complete (alpha bands:
    nothing to read), which the caller reports done.
    """
    if not any(is_planar_cmyk(t.source.encoding) for t in tasks):
        return tasks, on_done, []
    out: list[ReadTask] = []
    ready: list[ReadTask] = []
    waiting: dict[int, _Pending] = {}
    for task in tasks:
        src = task.source
        if not is_planar_cmyk(src.encoding):
            out.append(task)
            continue
        if src.band_index >= _BLACK:  # alpha: libtiff sets 255 for CMYK
            task.out[...] = 255
            _fill(task, fill_uncovered)
            ready.append(task)
            continue
        pending = _Pending(task, _plane(task, src, src.band_index), _plane(task, src, _BLACK))
        for sub in (pending.ink, pending.black):
            waiting[id(sub)] = pending
            out.append(sub)

    def done(sub: ReadTask) -> None:
        pending = waiting.pop(id(sub), None)
        if pending is None:  # a task of another encoding
            if on_done is not None:
                on_done(sub)
            return
        pending.left -= 1
        if pending.left:
            return
        task = pending.task
        k = 255 - pending.black.out.astype(np.uint16)
        task.out[...] = k * (255 - pending.ink.out.astype(np.uint16)) // 255
        _fill(task, fill_uncovered)
        if on_done is not None:
            on_done(task)

    return out, done, ready


def _plane(task: ReadTask, src: RasterSource, plane: int) -> ReadTask:
    """A raw read of one ink plane over the task's window (0 where nothing is stored)."""
    buf = np.zeros(task.window.shape, np.uint8)
    return ReadTask(replace(src, band_index=plane), task.level, task.window, buf, fill=None)


def _fill(task: ReadTask, fill_uncovered: FillUncovered) -> None:
    """Set the pixels outside the image and in sparse tiles to ``task.fill``, if any."""
    if task.fill is None:
        return
    layout = task.source.levels[task.level]
    plane = min(task.source.band_index, _BLACK)
    fill_uncovered(task, layout, tiles_for_window(layout, task.window, plane=plane))
