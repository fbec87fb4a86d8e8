"""``progress=True``: a tqdm bar over the tiles of each read of a variable.

Only for reads without dask (``.load()``, ``.values``, ``load_async``): under
dask every chunk is its own read, and dask's own progress bars
(``dask.diagnostics.ProgressBar``, the distributed dashboard) report those;
the arrays' :meth:`shard` (what dask tasks carry) drops the label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from .._read.schedule import read_then
from .._read.tasks import ReadOptions, ReadTask

__all__ = ["read_with_bar", "tile_bar"]


@contextmanager
def tile_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar ``reading <label>`` and the ``on_tile(done, total)`` that advances it."""
    from tqdm.auto import tqdm

    with tqdm(desc=f"reading {label}", unit="tile") as bar:

        def on_tile(done: int, total: int) -> None:
            if bar.total != total:
                bar.total = total
                bar.refresh()
            bar.update(done)

        yield on_tile


async def read_with_bar(tasks: Sequence[ReadTask], options: ReadOptions, label: str) -> None:
    """Read ``tasks`` as one read with a bar over its tiles (no merging with other reads)."""
    with tile_bar(label) as on_tile:
        await read_then([(list(tasks), None)], options, on_tile=on_tile)
