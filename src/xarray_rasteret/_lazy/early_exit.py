"""Early exit of ``method="first"`` (and ``"last"``): members read in waves, not all at once.

The first valid member of a pixel, in mosaic order, is its value; members after
it are never looked at. So a key of a :class:`~.mosaic.MosaicArray` is read in
waves, each ONE :func:`~xarray_rasteret._read.schedule.read_then` over every
time step of the key:

1. before any I/O, each output pixel is given to the first member whose extent
   on the output grid covers it (the level's image for a member pasted as is,
   its footprint window for a resampled one): when the first member covers the
   chunk, it alone is read, as one window;
2. once a wave is read, a pixel a member filled (valid: inside it, not nodata,
   not NaN, not dropped by ``mask=`` or an internal TIFF mask) is final; a pixel
   it left missing goes to the next member covering it, in mosaic order;
3. the next wave reads, of each member, only the blocks holding such pixels
   (its tiles for a member pasted as is, blocks of :data:`BLOCK` output pixels
   for a resampled one), until no pixel is missing or no member is left.

Extents, not the footprint polygons of the index, decide the first wave: a
polygon is not exact to the pixel, and a member skipped where it does have a
valid pixel would change the mosaic. Pixels equal those of the read of every
member (:attr:`~.mosaic.MosaicArray.early_exit` False, the reference).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import numpy as np

from .._read.schedule import read_then
from .._read.tasks import Group, ReadOptions, ReadTask
from .._types import Window
from .indexing import key_window, select

__all__ = ["BLOCK", "read_in_waves"]

# What this module uses of a MosaicArray, of its members and jobs (by duck typing:
# the mosaic module imports this one).
Member = Any
_Job = Any


class MosaicArray(Protocol):
    """The part of :class:`~.mosaic.MosaicArray` the waves use."""

    @property
    def steps(self) -> tuple[tuple[Member, ...], ...]: ...
    @property
    def shape(self) -> tuple[int, ...]: ...
    @property
    def dtype(self) -> np.dtype: ...
    @property
    def fill(self) -> float: ...
    @property
    def method(self) -> Any: ...
    @property
    def options(self) -> ReadOptions: ...
    @property
    def progress(self) -> str | None: ...
    def source_window(self, member: Member, dst: Window) -> tuple[Window, Window] | None: ...
    def reads_straight(self, member: Member) -> bool: ...
    def member_job(self, m: Member, w: Window, part: Window, tasks: list[ReadTask]) -> _Job: ...
    def kept_pixels(self, job: _Job) -> tuple[np.ndarray, np.ndarray]: ...
    def staged(self, then: Callable[[], None], jobs: Sequence[Sequence[_Job]],
               budget: Any) -> Callable[[], None]: ...

BLOCK = 256
"""Side, in output pixels, of the blocks a resampled member is read by in later waves."""


@dataclass
class _Step:
    """The state of one output time step of a key between waves."""

    out: np.ndarray
    members: list[tuple[Member, Window, Window]]
    """``(member, source window, part of dst)`` in the order the merge takes them."""
    rank: np.ndarray
    """Per output pixel, the position of the next member to look at."""
    done: np.ndarray
    """Per output pixel: filled, or no member is left to fill it."""


def _slices(part: Window, dst: Window) -> tuple[slice, slice]:
    p = part.relative_to(dst.row_start, dst.col_start)
    return slice(p.row_start, p.row_stop), slice(p.col_start, p.col_stop)


def _assign(step: _Step, dst: Window) -> np.ndarray:
    """Per missing pixel, the position of the member the next wave reads it from (-1: none)."""
    assigned = np.full(step.done.shape, -1, dtype=np.int32)
    for pos, (_, _, part) in enumerate(step.members):
        rs, cs = _slices(part, dst)
        region = assigned[rs, cs]
        region[~step.done[rs, cs] & (step.rank[rs, cs] <= pos) & (region < 0)] = pos
    # A missing pixel that no member left covers keeps the fill value.
    step.done |= assigned < 0
    return assigned


def _edges(start: int, size: int, origin: int, block: int) -> np.ndarray:
    """Edges in ``[0, size)``, relative to ``start``, of blocks of ``block`` from ``origin``."""
    first = (origin - start) % block
    return np.unique(np.r_[0, np.arange(first, size, block)]).astype(np.intp)


def _windows(member: Member, need: np.ndarray, dst: Window) -> list[Window]:
    """Windows of the output covering the blocks of ``member`` that hold ``need`` pixels."""
    if member.offset is not None:
        lv = member.source.levels[member.level]
        (ro, co), (bh, bw) = member.offset, (lv.tile_height, lv.tile_width)
    else:
        (ro, co), (bh, bw) = (0, 0), (BLOCK, BLOCK)
    ys = _edges(dst.row_start, need.shape[0], ro, bh)
    xs = _edges(dst.col_start, need.shape[1], co, bw)
    blocks = np.logical_or.reduceat(np.logical_or.reduceat(need, ys, axis=0), xs, axis=1)
    ys, xs = np.r_[ys, need.shape[0]], np.r_[xs, need.shape[1]]
    out = []
    for i, row in enumerate(blocks):
        # Runs of needed blocks along a row: one window each.
        flips = np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0]))
        for a, b in zip(flips[::2], flips[1::2], strict=True):
            out.append(Window(dst.row_start + int(ys[i]), dst.row_start + int(ys[i + 1]),
                              dst.col_start + int(xs[a]), dst.col_start + int(xs[b])))
    return out


def _plan_wave(
    array: MosaicArray, step: _Step, dst: Window
) -> tuple[list[_Job], list[int], list[ReadTask], np.ndarray]:
    """The jobs (with their member's position), tasks and pixel assignment of the next wave."""
    assigned = _assign(step, dst)
    jobs: list[_Job] = []
    positions: list[int] = []
    tasks: list[ReadTask] = []
    for pos, (m, w, part) in enumerate(step.members):
        need = assigned == pos
        if not need.any():
            continue
        rs, cs = _slices(part, dst)
        if need[rs, cs].all():  # the whole part: one window, as without early exit
            pieces: list[tuple[Window, Window]] = [(w, part)]
        else:
            pieces = [on for win in _windows(m, need, dst) if (on := array.source_window(m, win))]
        unread = need.copy()
        for win, piece in pieces:
            jobs.append(array.member_job(m, win, piece, tasks))
            positions.append(pos)
            unread[_slices(piece, dst)] = False
        # A block no source pixel reaches has no value from this member (as in a read
        # of its whole part): its pixels go on to the next member, so waves end.
        step.rank[unread] = pos + 1
    return jobs, positions, tasks, assigned


def _merge_wave(
    array: MosaicArray, step: _Step, dst: Window, jobs: Sequence[_Job], positions: Sequence[int],
    assigned: np.ndarray,
) -> None:
    """Take each job's kept pixels where the wave gave them to its member; the rest go on."""
    for job, pos in zip(jobs, positions, strict=True):
        values, valid = array.kept_pixels(job)
        rs, cs = _slices(job.part, dst)
        mine = assigned[rs, cs] == pos
        take = mine & valid
        np.copyto(step.out[rs, cs], values, where=take, casting="unsafe")
        step.done[rs, cs] |= take
        rank = step.rank[rs, cs]
        rank[mine & ~valid] = pos + 1


class _Waves:
    """The waves of one key: its output, and per time step what is still missing."""

    def __init__(
        self, array: MosaicArray, key: tuple[Any, ...], budget: Callable[[], Any]
    ) -> None:
        self.array = array
        self.key = key
        self.budget = budget
        self.steps: list[_Step] | None = None
        self.straight: list[ReadTask] = []
        """Tasks of the steps whose lone member is read straight into the output."""
        self.finished = False
        """True once a wave found nothing left to read."""

    def _start(self) -> list[_Step]:
        """Allocate the output and list each step's members covering the key (no I/O)."""
        array = self.array
        times, self.dst, self.post = key_window(self.key, array.shape)
        y0, y1, x0, x1 = self.dst.bounds
        self.out = np.full((np.size(times), y1 - y0, x1 - x0), array.fill, dtype=array.dtype)
        steps = []
        for i, t in enumerate(np.atleast_1d(times)):
            found = []
            if y1 > y0 and x1 > x0:
                found = [(m, *f) for m in array.steps[int(t)]
                         if (f := array.source_window(m, self.dst))]
            if array.method == "last":
                found.reverse()
            shape = self.out.shape[1:]
            step = _Step(self.out[i], found, np.zeros(shape, np.int32), np.zeros(shape, bool))
            lone = found[0][0] if len(found) == 1 else None
            if lone is not None and lone.offset is not None and array.reads_straight(lone):
                # As MosaicArray.plan: read straight into the output, nothing to merge.
                window = self.dst.relative_to(*lone.offset)
                self.straight.append(ReadTask(lone.source, lone.level, window, step.out,
                                              array.fill))
                step.done[...] = True
            steps.append(step)
        return steps

    def next_groups(self) -> list[Group]:
        """The read groups of the next wave, one per step with pixels to read; [] when done."""
        groups: list[Group] = []
        if self.steps is None:
            self.steps = self._start()
            groups.extend(([task], None) for task in self.straight)
        budget = self.budget()
        for step in self.steps:
            jobs, positions, tasks, assigned = _plan_wave(self.array, step, self.dst)
            if jobs:
                merge = partial(_merge_wave, self.array, step, self.dst, jobs, positions, assigned)
                groups.append((tasks, self.array.staged(merge, [jobs], budget)))
        self.finished = not groups
        return groups


async def read_in_waves(
    array: MosaicArray, key: tuple[Any, ...], budget: Callable[[], Any]
) -> np.ndarray:
    """Read ``key`` of ``array`` (method ``first`` or ``last``) in waves; see the module.

    ``budget()`` gives each wave its :class:`~.mosaic.PositionBudget`.
    """
    waves = _Waves(array, key, budget)
    on_tile: Callable[[int, int], None] | None = None
    with contextlib.ExitStack() as stack:
        if array.progress is not None:
            from .progress import tile_bar

            on_tile = stack.enter_context(tile_bar(array.progress))
        while not waves.finished:
            # Planned in a decode thread, as MosaicArray._read plans its one read.
            await read_then([], array.options, on_tile=on_tile, more=waves.next_groups)
    return select(waves.out, waves.post)
