"""The lazy ``(time, y, x)`` array of a common grid: mosaics and reprojection.

Each time step is a list of *members* (records, in mosaic order). A member
is either *aligned* with the output grid (same CRS, pixel size and lattice:
its pixels are pasted, exactly) or *warped* (its pixels are resampled with
:func:`~xarray_rasteret.geo.reproject.reproject`). For an index key:

1. the key's bounding window on the output grid is computed;
2. per member, the source window that window needs (for warped members
   :func:`~xarray_rasteret.geo.reproject.source_window`, which includes the
   resampling kernel's margin, so chunks agree with a whole-grid read);
3. every member of every time step of the key is read by ONE
   :func:`~xarray_rasteret._fetch.read_then` call;
4. per time step, as soon as its members are read, they are resampled and
   merged: the first valid pixel wins (a pixel is valid when it is inside the
   member and not nodata/NaN).

Like :class:`~xarray_rasteret._array.RasteretArray` the array holds only
metadata and pickles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from .._read.schedule import read_then
from .._read.tasks import Group, ReadOptions, ReadTask, Staged
from .._types import RasterSource, Window
from ..geo._positions import positions
from ..geo.grid import RasterGrid
from .indexing import OuterIndexedArray, key_window, select
from .internal_masks import mask_task, masked_values
from .masks import MaskRule
from .methods import Method, merge
from .native import lean_source

__all__ = ["Member", "MosaicArray", "PositionBudget"]


@dataclass(frozen=True)
class Member:
    """One record's band as a contributor to one time step of the output."""

    source: RasterSource
    """The band of the record to read."""
    level: int
    """Image level read (0 full resolution, then overviews)."""
    offset: tuple[int, int] | None = None
    """``(row, col)`` of the level's pixel ``(0, 0)`` in the output grid when the
    level is aligned with it (pasted, no resampling); None to resample."""
    footprint: Window | None = None
    """For a resampled member: the window of the output grid its footprint
    covers (plus a margin). Only output pixels in it are computed; they are
    still those of a warp onto the whole output grid, as GDAL does it."""
    mask: Member | None = None
    """The same record's mask band (:mod:`.masks`), read on the output grid with
    nearest neighbour; its rule drops this member's pixels before the merge."""

    @property
    def grid(self) -> RasterGrid:
        """The pixel grid of the level read."""
        return RasterGrid.of(self.source, self.level)


@dataclass
class _Job:
    """What one member contributes to one output time step of a read."""

    member: Member
    window: Window
    """Source window read (clipped to the level)."""
    buffer: np.ndarray
    part: Window
    """The part of the output grid this member can fill in this read."""
    mask: _Job | None = None
    """The job reading the member's mask band over (part of) ``part``."""
    internal: np.ndarray | None = None
    """The member's internal TIFF mask over ``window`` (:mod:`.internal_masks`; 0: masked)."""


class PositionBudget:
    """Bytes of source positions one read may compute ahead of its pixels.

    Positions computed ahead wait in the warper's shared cache until their
    pixels arrive; this keeps one read's share of it at half, so none is
    dropped before it is used.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.left = positions.max_bytes // 2 if limit is None else limit

    def take(self, nbytes: int) -> bool:
        """Reserve ``nbytes``; False (nothing reserved) when they do not fit."""
        if nbytes > self.left:
            return False
        self.left -= nbytes
        return True


def _valid(values: np.ndarray, nodata: float | None) -> np.ndarray:
    if values.dtype.kind == "c":
        # GDAL: a complex value is nodata when its real part is.
        values = values.real
    if values.dtype.kind == "f":
        valid = ~np.isnan(values)
        if nodata is not None and not math.isnan(nodata):
            valid &= values != nodata
        return valid
    if nodata is None or math.isnan(nodata):
        return np.ones(values.shape, dtype=bool)
    return values != nodata


class MosaicArray(OuterIndexedArray):
    """A lazy array over groups of records of one band on one output grid.

    Parameters
    ----------
    steps
        Per output time step, its members in mosaic order (first valid wins).
    grid
        The output grid.
    dtype
        Output dtype.
    fill
        Value of output pixels that no member fills (nodata, else 0).
    resampling
        Resampling of warped members (``nearest``, ``bilinear``, ``cubic``,
        ``average``, ``mode``).
    options
        Storage and concurrency options for every read.
    progress
        A label: each read (without dask) shows a tqdm bar over its tiles.
    method
        How a step's members merge (:mod:`.methods`; default: first valid wins).
    mask_rule
        Which pixels of the members' mask bands drop their pixels (:mod:`.masks`).
    """

    early_exit = True
    """Whether ``first``/``last`` read their members in waves (:mod:`.early_exit`), not
    all at once; a switch for the whole class (False: the reference, every member read)."""

    def __init__(
        self,
        steps: Sequence[Sequence[Member]],
        grid: RasterGrid,
        dtype: np.dtype,
        fill: float,
        resampling: str,
        options: ReadOptions,
        progress: str | None = None,
        method: Method = "first",
        mask_rule: MaskRule | None = None,
    ) -> None:
        self.progress = progress
        self.method = method
        self.mask_rule = mask_rule
        self.steps = tuple(tuple(s) for s in steps)
        self.grid = grid
        self.shape = (len(self.steps), grid.height, grid.width)
        self.dtype = np.dtype(dtype)
        self.fill = fill
        self.resampling = resampling
        self.options = options

    def shard(self, start: int, stop: int) -> MosaicArray:
        """The array of time steps ``[start, stop)`` only (what one dask task carries)."""
        return MosaicArray(self.steps[start:stop], self.grid, self.dtype, self.fill,
                           self.resampling, self.options, method=self.method,
                           mask_rule=self.mask_rule)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (for a dask task) with lean sources, as RasteretArray.
        shared: dict[Any, Any] = {}

        def lean(m: Member) -> Member:
            mask = None if m.mask is None else lean(m.mask)
            return replace(m, source=lean_source(m.source, m.level, shared), mask=mask)

        steps = [[lean(m) for m in step] for step in self.steps]
        args = (steps, self.grid, self.dtype, self.fill, self.resampling, self.options, None,
                self.method, self.mask_rule)
        return (MosaicArray, args)

    # -- planning (no I/O) ---------------------------------------------------

    def source_window(self, member: Member, dst: Window) -> tuple[Window, Window] | None:
        """The window of ``member``'s level that output window ``dst`` needs.

        Returns
        -------
        tuple of Window or None
            ``(source window, part of dst the member can fill)``, or None when
            the member contributes nothing to ``dst``.
        """
        g = member.grid
        if member.offset is not None:
            ro, co = member.offset
            w = g.clip(dst.relative_to(ro, co))
            return None if w is None else (w, w.relative_to(-ro, -co))
        fp = member.footprint
        part = dst if fp is None else dst.intersection(fp)
        if part is None:
            return None
        from ..geo.reproject import source_window

        win = source_window(
            self.grid.shape,
            self.grid.transform,
            self.grid.crs,
            g.transform,
            g.crs,
            g.shape,
            resampling=self.resampling,  # type: ignore[arg-type]
            dst_window=(part.row_start, part.row_stop, part.col_start, part.col_stop),
        )
        return None if win is None else (Window(*win), part)

    def reads_straight(self, member: Member) -> bool:
        """Whether ``member``, alone in its time step, can be read straight into the output.

        True for a member on the output's lattice whose stored values the merge
        would keep as they are: same dtype, and every value the merge treats as
        missing (nodata, NaN) equal to the output's fill value. Its read then
        writes the output, with the fill value outside the image and in sparse
        tiles: no buffer, no merge.
        """
        if member.offset is None or np.dtype(member.source.dtype) != self.dtype:
            return False
        if member.mask is not None or member.source.mask is not None:
            return False  # its pixels are masked before they are kept
        nodata, fill = member.source.nodata, self.fill
        if self.dtype.kind == "f":
            return math.isnan(fill) and (nodata is None or math.isnan(nodata))
        return fill == member.source.fill

    def plan(
        self, key: tuple[Any, ...], out: np.ndarray | None = None, *, fill_out: bool = True
    ) -> tuple[np.ndarray, Window, list[list[_Job]], list[list[ReadTask]], tuple[Any, ...]]:
        """Allocate the output of ``key`` and list what each time step reads (no I/O).

        A time step whose only member :meth:`reads_straight` has one task
        writing its whole output and no job. ``out``, if given, is used as the
        output: an array of the key's bounding box, ``(time, y, x)``. Unless
        ``fill_out`` is False, the steps not read straight are set to the fill
        value; otherwise the caller fills them before assembling (see
        :meth:`staged`).

        Returns
        -------
        out, dst, jobs, tasks, post
            The output (bounding box of the key), its window on the grid, per
            output step the members' jobs and the read tasks (one per job, in
            order, or the one task of a step read straight), and the indexer
            giving the key's exact selection.
        """
        times, dst, post = key_window(key, self.shape)
        y0, y1, x0, x1 = dst.bounds
        shape = (np.size(times), y1 - y0, x1 - x0)
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        elif out.shape != shape:
            raise ValueError(f"out has shape {out.shape}, the key needs {shape}")
        jobs: list[list[_Job]] = []
        tasks: list[list[ReadTask]] = []
        for i, t in enumerate(np.atleast_1d(times)):
            step: list[_Job] = []
            step_tasks: list[ReadTask] = []
            found = []
            if y1 > y0 and x1 > x0:
                found = [(m, f) for m in self.steps[int(t)] if (f := self.source_window(m, dst))]
            lone = found[0][0] if len(found) == 1 else None
            if lone is not None and lone.offset is not None and self.reads_straight(lone):
                ro, co = lone.offset
                window = dst.relative_to(ro, co)
                step_tasks.append(ReadTask(lone.source, lone.level, window, out[i], self.fill))
            else:
                if fill_out:
                    out[i] = self.fill
                for m, (w, part) in found:
                    job = self.member_job(m, w, part, step_tasks)
                    step.append(job)
            jobs.append(step)
            tasks.append(step_tasks)
        return out, dst, jobs, tasks, post

    def member_job(
        self, m: Member, w: Window, part: Window, tasks: list[ReadTask]
    ) -> _Job:
        """The job of ``m`` reading source window ``w`` for ``part``; its tasks go to ``tasks``."""
        # Unfilled: the read writes every pixel (sparse tiles as nodata).
        buf = np.empty(w.shape, dtype=m.source.dtype)
        job = _Job(m, w, buf, part)
        tasks.append(ReadTask(m.source, m.level, w, buf, fill=m.source.fill))
        if (inside := mask_task(m.source, m.level, w)) is not None:
            job.internal = inside.out
            tasks.append(inside)
        if m.mask is not None and (on := self.source_window(m.mask, part)):
            mw, mpart = on
            mbuf = np.empty(mw.shape, dtype=m.mask.source.dtype)
            job.mask = _Job(m.mask, mw, mbuf, mpart)
            tasks.append(ReadTask(m.mask.source, m.mask.level, mw, mbuf, m.mask.source.fill))
        return job

    # -- reading -------------------------------------------------------------

    async def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        if self.early_exit and self.method in ("first", "last"):
            times = np.atleast_1d(key_window(key, self.shape)[0])
            if any(len(self.steps[int(t)]) > 1 for t in times):
                from .early_exit import read_in_waves

                return await read_in_waves(self, key, PositionBudget)
        planned: list[tuple[np.ndarray, Any]] = []

        def plan_groups() -> list[Group]:
            out, dst, jobs, tasks, post = self.plan(key, fill_out=False)
            planned.append((out, post))
            # Each time step is resampled (numpy work that releases the GIL) in a
            # decode thread as soon as its own members are read; its output is
            # filled, and the source positions of its warped members computed,
            # while the tiles travel.
            budget = PositionBudget()
            groups: list[Group] = []
            for i, (step, step_tasks) in enumerate(zip(jobs, tasks, strict=True)):
                if step:
                    assemble = partial(self._assemble, out[i], dst, step)
                    staged = self.staged(assemble, [step], budget, unfilled=out[i])
                    groups.append((step_tasks, staged))
                elif step_tasks:
                    groups.append((step_tasks, None))  # read straight into out[i]
                else:
                    out[i] = self.fill  # nothing covers this step
            return groups

        # Planned in a decode thread, not on the event loop: reads gathered on one
        # loop (``load_async`` of many AOIs) then send their requests as soon as
        # each is planned, not after every one of them is.
        if self.progress is None:
            await read_then([], self.options, more=plan_groups)
        else:
            from .progress import tile_bar

            with tile_bar(self.progress) as on_tile:
                await read_then([], self.options, on_tile=on_tile, more=plan_groups)
        out, post = planned[0]
        return select(out, post)

    def assemble(self, out: np.ndarray, dst: Window, jobs: Sequence[Sequence[_Job]]) -> None:
        """Resample and merge what :meth:`plan` listed into ``out``, once its tasks are read."""
        for i, step in enumerate(jobs):
            if step:
                self._assemble(out[i], dst, step)

    def staged(
        self,
        then: Callable[[], None],
        jobs: Sequence[Sequence[_Job]],
        budget: PositionBudget,
        unfilled: np.ndarray | None = None,
    ) -> Callable[[], None]:
        """``then`` (which resamples ``jobs``), preceded by the work that needs no pixels.

        Returns a :class:`~xarray_rasteret._fetch.Staged` whose first step,
        run while the tiles travel, sets ``unfilled`` (an output planned with
        ``fill_out=False``) to the fill value, first touching its pages, and
        computes the warped members' source positions when ``budget`` has room
        for them (else ``then`` computes them as it goes); ``then`` alone when
        there is nothing to do first.
        """
        from ..geo.reproject import position_bytes

        # Mask jobs are warped with nearest, not the array's method: they compute their
        # positions as they go.
        warped = [job for step in jobs for job in step if job.member.offset is None]
        method: Any = self.resampling
        need = sum(position_bytes(job.part.bounds, method) for job in warped)
        ahead = warped if warped and budget.take(need) else []
        if unfilled is None and not ahead:
            return then
        return Staged(partial(self._before_pixels, unfilled, ahead), then)

    def _before_pixels(self, unfilled: np.ndarray | None, warped: Sequence[_Job]) -> None:
        """Fill ``unfilled`` and compute the source positions of ``warped`` (no pixels needed)."""
        from ..geo.reproject import prepare_positions

        if unfilled is not None:
            unfilled[...] = self.fill
        for job in warped:
            g = job.member.grid
            prepare_positions(
                src_transform=g.transform,
                src_crs=g.crs,
                src_window=job.window.bounds,
                src_shape=g.shape,
                dst_shape=self.grid.shape,
                dst_transform=self.grid.transform,
                dst_crs=self.grid.crs,
                dst_window=job.part.bounds,
                resampling=self.resampling,  # type: ignore[arg-type]
            )

    def _assemble(self, out: np.ndarray, dst: Window, step: Sequence[_Job]) -> None:
        """Merge the members of one time step into ``out`` by the array's method."""
        parts = []
        for job in step:
            values, valid = self.kept_pixels(job)
            p = job.part.relative_to(dst.row_start, dst.col_start)
            parts.append(
                (values, valid, slice(p.row_start, p.row_stop), slice(p.col_start, p.col_stop))
            )
        merge(self.method, out, parts)

    def kept_pixels(self, job: _Job) -> tuple[np.ndarray, np.ndarray]:
        """``job``'s values on its part and where the merge may take them (valid, not masked)."""
        values, valid = self._member_pixels(job)
        if job.member.mask is not None:
            valid = valid & self._kept(job)
        return values, valid

    def _kept(self, job: _Job) -> np.ndarray:
        """Where ``job``'s mask band keeps its pixels, on ``job.part`` (False off the mask)."""
        kept = np.zeros(job.part.shape, dtype=bool)
        mask = job.mask
        if mask is None:
            return kept
        assert self.mask_rule is not None
        values, valid = self._member_pixels(mask, "nearest")
        p = mask.part.relative_to(job.part.row_start, job.part.col_start)
        kept[p.row_start:p.row_stop, p.col_start:p.col_stop] = valid & ~self.mask_rule.drops(
            values
        )
        return kept

    def _member_pixels(
        self, job: _Job, resampling: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """One member's values on ``job.part`` of the output and where they are valid."""
        if job.member.offset is not None:
            # The source window is exactly the part: paste.
            valid = _valid(job.buffer, job.member.source.nodata)
            return job.buffer, valid if job.internal is None else valid & (job.internal != 0)
        return self._warp(job, resampling or self.resampling)

    def _warp(self, job: _Job, resampling: str) -> tuple[np.ndarray, np.ndarray]:
        from ..geo.reproject import reproject

        m = job.member
        g = m.grid
        part = job.part
        nodata = m.source.nodata
        src = job.buffer if job.internal is None else masked_values(job.buffer, job.internal)
        integer_without_nodata = nodata is None and src.dtype.kind in "iub"
        if integer_without_nodata:
            # No value is free to mark "not covered": resample in float64 with NaN
            # for it, then store as GDAL stores integers (clamped, rounded half up).
            src = src.astype(np.float64)
        dst_nodata: float | None = nodata
        if nodata is None or (src.dtype.kind == "f" and math.isnan(nodata)):
            dst_nodata = math.nan if src.dtype.kind == "f" else None
        values = reproject(
            src,
            src_transform=g.transform,
            src_crs=g.crs,
            src_nodata=nodata,
            dst_shape=self.grid.shape,
            dst_transform=self.grid.transform,
            dst_crs=self.grid.crs,
            dst_nodata=dst_nodata,
            resampling=resampling,  # type: ignore[arg-type]
            src_window_offset=(job.window.row_start, job.window.col_start),
            src_shape=g.shape,
            dst_window=part.bounds,
        )
        valid = _valid(values, dst_nodata)
        if integer_without_nodata:
            info = np.iinfo(job.buffer.dtype) if job.buffer.dtype.kind != "b" else None
            v = np.where(valid, values, 0.0)
            if info is not None and resampling != "nearest":
                v = np.floor(np.clip(v, info.min, info.max) + 0.5)
                v = np.minimum(v, info.max)
            values = v.astype(job.buffer.dtype)
        return values, valid
