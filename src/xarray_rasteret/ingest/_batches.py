"""A build written to Parquet batch by batch: 100k files never in memory at once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

from .._types import RasterSource
from ..collection import Collection
from . import _parse, _stac

__all__ = ["build_to", "conform"]


async def build_to(
    output: str | os.PathLike[str],
    records: list[_stac.Record],
    table_of: Callable[[list[_stac.Record], Mapping[str, list[RasterSource]]], pa.Table],
    options: dict[str, Any],
    batch_size: int,
    name: str | None,
) -> tuple[Collection, list[tuple[str, str, str]]]:
    """Parse and write ``batch_size`` records at a time: only one batch is ever in memory.

    Returns the collection and what ``on_error="skip"`` left out.
    """
    from ..collection import load, write_collection

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    schema: list[pa.Schema] = []
    skipped: list[tuple[str, str, str]] = []

    async def batches() -> Any:
        failures: dict[str, BaseException] = {}
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            hrefs = list(dict.fromkeys(r.href for rec in batch for r in rec.assets.values()))
            parsed, failed = await _parse.parse_all(hrefs, **options)
            batch, left_out = _parse.drop_failed(batch, failed)
            skipped.extend(left_out)
            failures.update(failed)
            if not batch:
                continue
            table = table_of(batch, parsed)
            if schema:
                table = conform(table, schema[0], start)
            else:
                schema.append(table.schema)
            yield table
        _parse.raise_if_nothing(len(schema), failures)

    loop_batches = batches()

    def tables() -> Any:
        # The writer pulls tables synchronously; each batch's headers are awaited here,
        # on the loop this coroutine runs on, one batch at a time.
        while True:
            try:
                yield asyncio.run_coroutine_threadsafe(anext(loop_batches), loop).result()
            except StopAsyncIteration:
                return

    loop = asyncio.get_running_loop()
    await asyncio.to_thread(write_collection, tables(), output)
    out = load(output)
    out.name = name
    return out, skipped


def conform(table: pa.Table, schema: pa.Schema, start: int) -> pa.Table:
    """``table`` in the first batch's ``schema``: missing bands/columns null, others refused."""
    extra = [n for n in table.column_names if n not in schema.names]
    if extra:
        raise ValueError(
            f"the records from {start} on have columns {extra} that the first batch lacks; "
            "build with a larger batch_size (or without output=) so that the first batch "
            "has every band and property"
        )
    cols = [
        table.column(f.name) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    try:
        return pa.table(cols, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.Table.from_arrays(
            [c.cast(f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
        )
