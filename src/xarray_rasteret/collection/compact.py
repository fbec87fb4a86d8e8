"""Compact tile tables on disk: tile offsets stored as the gaps between tiles.

A COG's tiles follow one another (GDAL puts a 4-byte leader and trailer
around each), so ``offset[i] = offset[i - 1] + count[i - 1] + gap[i]`` with a
constant gap. Written as ``tile_gaps`` (``gap[0]`` is the first offset) under
Parquet's ``DELTA_BINARY_PACKED`` encoding, the offsets cost a few bits per
record instead of one tile size per tile, the same facts. ``tile_offsets`` is
then written null, so that a reader that does not know ``tile_gaps`` fails loudly
rather than reading other offsets. Tables in memory always hold
``tile_offsets``: :func:`expand` restores them as a file is read (only for the
rows read), :func:`compact` replaces them as a file is written.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .schema import METADATA_SUFFIX

__all__ = ["GAPS", "compact", "compact_table", "expand", "expand_table"]

GAPS = "tile_gaps"
_OFF, _CNT = "tile_offsets", "tile_byte_counts"


def _flat(arr: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(row lengths, values) of a list array, nulls as empty rows."""
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    values = pc.list_flatten(arr)
    return np.asarray(lengths, np.int64), values


def _row_starts(lengths: np.ndarray) -> np.ndarray:
    starts = np.zeros(len(lengths), np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return starts


def _compactable(md: pa.Array) -> bool:
    t = md.type
    if not pa.types.is_struct(t) or GAPS in t.names or not {_OFF, _CNT} <= set(t.names):
        return False
    return all(
        pa.types.is_list(t.field(k).type) and pa.types.is_integer(t.field(k).type.value_type)
        for k in (_OFF, _CNT)
    )


def compact(md: pa.StructArray) -> pa.StructArray:
    """``{band}_metadata`` with ``tile_offsets`` replaced by ``tile_gaps`` (where exact).

    Rows whose offsets and counts differ in length, or hold nulls, keep their offsets.
    """
    if not _compactable(md):
        return md
    offs, cnts = pc.struct_field(md, _OFF), pc.struct_field(md, _CNT)
    n_off, v_off = _flat(offs)
    n_cnt, v_cnt = _flat(cnts)
    ok = (n_off == n_cnt) & offs.is_valid().to_numpy(zero_copy_only=False)
    ok &= cnts.is_valid().to_numpy(zero_copy_only=False)
    o = np.asarray(v_off.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    c_full = np.asarray(v_cnt.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    row_of_off = np.repeat(np.arange(len(md)), n_off)
    # Rows with nulls inside a list, or a count list of another length, stay as they are.
    if v_off.null_count or v_cnt.null_count:
        bad_rows = np.unique(row_of_off[np.asarray(v_off.is_null().to_numpy(zero_copy_only=False))])
        ok[bad_rows] = False
        row_of_cnt = np.repeat(np.arange(len(md)), n_cnt)
        ok[np.unique(row_of_cnt[np.asarray(v_cnt.is_null().to_numpy(zero_copy_only=False))])] = (
            False
        )
    take = ok[row_of_off]
    o = o[take]
    c = c_full[np.repeat(ok, n_cnt)]
    lengths = np.where(ok, n_off, 0)
    starts = _row_starts(lengths)
    prev_end = np.zeros_like(o)
    if len(o):
        prev_end[1:] = o[:-1] + c[:-1]
        prev_end[starts[lengths > 0]] = 0
    gaps = o - prev_end
    list_offsets = np.zeros(len(md) + 1, np.int32)
    np.cumsum(lengths, out=list_offsets[1:])
    gaps_arr = pa.ListArray.from_arrays(
        pa.array(list_offsets), pa.array(gaps, pa.int64()), mask=pa.array(~ok)
    )
    kept = pc.if_else(pa.array(ok), pa.nulls(len(md), offs.type), offs)
    return _replace(md, {_OFF: kept}, (GAPS, gaps_arr))


def expand(md: pa.StructArray) -> pa.StructArray:
    """``{band}_metadata`` with ``tile_offsets`` restored from ``tile_gaps`` (which is dropped)."""
    t = md.type
    if not pa.types.is_struct(t) or GAPS not in t.names:
        return md
    gaps, cnts, offs = (pc.struct_field(md, k) for k in (GAPS, _CNT, _OFF))
    has = gaps.is_valid().to_numpy(zero_copy_only=False)
    n_gap, v_gap = _flat(gaps)
    n_cnt, v_cnt = _flat(cnts)
    if ((n_gap != n_cnt) & has).any():
        i = int(np.argmax((n_gap != n_cnt) & has))
        from ..errors import MissingMetadataError

        raise MissingMetadataError(
            f"row {i}: {GAPS} has {n_gap[i]} entries but {_CNT} {n_cnt[i]}; the tile table "
            "is damaged: rebuild the collection with xarray_rasteret.build(...)"
        )
    g = np.asarray(v_gap.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    c = np.asarray(v_cnt.fill_null(0).to_numpy(zero_copy_only=False), np.int64)[
        np.repeat(has, n_cnt)
    ]
    lengths = np.where(has, n_gap, 0)
    starts = _row_starts(lengths)
    step = g.copy()
    if len(g):
        step[1:] += c[:-1]
        step[starts[lengths > 0]] = g[starts[lengths > 0]]
    total = np.cumsum(step)
    nz = lengths > 0  # an empty row's start lies past the values
    base_row = np.zeros(len(md), np.int64)
    base_row[nz] = total[starts[nz]] - step[starts[nz]]
    base = np.repeat(base_row, lengths)
    restored = total - base
    list_offsets = np.zeros(len(md) + 1, np.int32)
    np.cumsum(lengths, out=list_offsets[1:])
    rebuilt = pa.ListArray.from_arrays(
        pa.array(list_offsets), pa.array(restored, offs.type.value_type), mask=pa.array(~has)
    )
    merged = pc.if_else(pa.array(has), rebuilt, offs)
    out = _replace(md, {_OFF: merged}, None)
    names = [f.name for f in out.type if f.name != GAPS]
    return pa.StructArray.from_arrays(
        [pc.struct_field(out, k) for k in names],
        fields=[out.type.field(k) for k in names],
        mask=md.is_null(),
    )


def _replace(
    md: pa.StructArray, new: dict[str, pa.Array], extra: tuple[str, pa.Array] | None
) -> pa.StructArray:
    fields = list(md.type)
    arrays = [new.get(f.name, pc.struct_field(md, f.name)) for f in fields]
    if extra is not None:
        fields.append(pa.field(extra[0], extra[1].type))
        arrays.append(extra[1])
    return pa.StructArray.from_arrays(arrays, fields=fields, mask=md.is_null())


def _map_bands(table: pa.Table, fn: object) -> pa.Table:
    for i, name in enumerate(table.column_names):
        if not name.endswith(METADATA_SUFFIX):
            continue
        col = table.column(i)
        chunks = [fn(c) for c in col.chunks]  # type: ignore[operator]
        if chunks and chunks[0].type != col.type:
            table = table.set_column(i, name, pa.chunked_array(chunks, chunks[0].type))
    return table


def compact_table(table: pa.Table) -> pa.Table:
    """``table`` with every band's tile offsets as gaps (see :func:`compact`)."""
    return _map_bands(table, compact)


def expand_table(table: pa.Table) -> pa.Table:
    """``table`` with every band's tile offsets restored (see :func:`expand`)."""
    return _map_bands(table, expand)
