"""Run hostile cases in guarded children: a memory limit, a deadline, deaths survived.

Each case's bytes are written to a file and handed to a child process that runs
under ``RLIMIT_AS`` (a Rust allocation abort or a runaway allocation kills only
the child) while the parent keeps a per-case deadline (a hang in native code
cannot be interrupted from inside). Several cases share one child, since the
import costs more than most cases; after a death or a timeout the parent starts
a fresh child with the cases that remain.

Used by the hostile header, tile and index tests (``tests/ingest``, ``tests/collection``).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = ["OUTCOMES", "Case", "Result", "child_program", "run_cases", "table"]

OUTCOMES = ("ok", "clear", "unnamed", "other", "wrong", "death", "timeout", "memory")
"""How a case ends: built (and read, where the child reads); a RasteretError naming
the file; one not naming it; another exception type; pixels other than GDAL's
where GDAL reads the file; the child killed by a signal or abort; past the
deadline; out of memory (MemoryError or a failed native allocation)."""


@dataclass(frozen=True)
class Case:
    """One mutated file: the kind of mutation, a label, and its bytes."""

    kind: str
    label: str
    data: bytes



# --------------------------------------------------------------------------- running

_CHILD_TEMPLATE = r"""
import json, resource, sys
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
{setup}
from xarray_rasteret.errors import RasteretError
for line in sys.stdin:
    path = line.strip()
    print("start", flush=True)
    try:
{work}
    except MemoryError:
        res = {{"outcome": "memory"}}
    except Exception as e:
        text = "\n".join([str(e), *getattr(e, "__notes__", [])])
        res = {{"outcome": "error", "type": type(e).__name__,
               "rasteret": isinstance(e, RasteretError), "message": text}}
    print(json.dumps(res), flush=True)
"""


def child_program(setup: str, work: str) -> str:
    """A child program for :func:`run_cases`.

    ``setup`` runs once (imports); ``work`` runs per ``path`` and sets ``res``
    (``{"outcome": "ok"}``, or ``"wrong"`` with a ``"message"``); an exception it
    raises is reported as the case's error.
    """
    body = textwrap.indent(textwrap.dedent(work).strip(), " " * 8)
    return _CHILD_TEMPLATE.format(setup=textwrap.dedent(setup).strip(), work=body)


_CHILD = child_program("import xarray_rasteret", """
    xarray_rasteret.build([path])
    res = {"outcome": "ok"}
""")


@dataclass(frozen=True)
class Result:
    """How one case ended, with the error type and message where there was one."""

    case: Case
    outcome: str
    detail: str = ""


def _classify(case: Case, path: Path, res: dict[str, object]) -> Result:
    if res["outcome"] == "wrong":
        return Result(case, "wrong", str(res.get("message", "")))
    if res["outcome"] != "error":
        return Result(case, str(res["outcome"]), str(res.get("message", "")))
    detail = f"{res['type']}: {res['message']}"
    if not res["rasteret"]:
        return Result(case, "other", detail)
    return Result(case, "clear" if path.name in str(res["message"]) else "unnamed", detail)


def _run_shard(
    items: Sequence[tuple[Case, Path]], timeout: float, mem: int, child: str
) -> list[Result]:
    """Run ``items`` in as few children as deaths and timeouts allow."""
    results: list[Result] = []
    while len(results) < len(items):
        rest = items[len(results) :]
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", child, str(mem)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("".join(f"{p}\n" for _, p in rest))
            proc.stdin.close()
            lines: queue.Queue[str | None] = queue.Queue()
            pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
            pump.start()
            results.extend(_collect(proc, lines, rest, timeout, err))
            pump.join(timeout=10)  # the child has exited: its output ends at once
            proc.stdout.close()
    return results


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Move the child's output lines to ``lines``; None marks its end."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def _collect(
    proc: subprocess.Popen[str],
    lines: queue.Queue[str | None],
    rest: Sequence[tuple[Case, Path]],
    timeout: float,
    err: IO[bytes],
) -> Iterator[Result]:
    """Results of one child, up to its first death or timeout (inclusive)."""
    wait = 60.0  # the first case waits for the import too
    for case, path in rest:
        try:
            started = lines.get(timeout=wait)
            line = lines.get(timeout=timeout) if started is not None else None
        except queue.Empty:
            proc.kill()
            proc.wait()
            yield Result(case, "timeout")
            return
        if line is None:
            yield _death(proc, case, err)
            return
        wait = timeout
        yield _classify(case, path, json.loads(line))
    proc.wait()


def _death(proc: subprocess.Popen[str], case: Case, err: IO[bytes]) -> Result:
    proc.wait()
    err.seek(0)
    text = err.read().decode(errors="replace")
    # The cause is the allocation failure or the panic, not the backtrace after it.
    cause = next(
        (
            ln
            for ln in text.splitlines()
            if "memory allocation" in ln or "panicked at" in ln or "Error" in ln
        ),
        text[-300:],
    )
    memory = "memory allocation" in cause or "MemoryError" in cause
    return Result(case, "memory" if memory else "death", f"rc={proc.returncode} {cause}")


def run_cases(
    cases: Sequence[Case],
    directory: Path,
    *,
    timeout: float = 10.0,
    mem: int = 2 << 30,
    workers: int = 3,
    child: str = _CHILD,
    suffix: str = ".tif",
) -> list[Result]:
    """Write ``cases`` under ``directory`` and build each in a guarded child.

    Parameters
    ----------
    cases
        The mutated files.
    directory
        Where the files are written (one per case, named after its index).
    timeout
        Seconds one case may take.
    mem
        ``RLIMIT_AS`` of the children, in bytes.
    workers
        Children run at once; cases are dealt to them round-robin.
    child
        The child's program: it reads one path per line from stdin and prints
        ``start`` then one JSON result per path (default: ``build`` each file).
    suffix
        The files' suffix (``.tif``; ``.parquet`` for tampered indexes).

    Returns
    -------
    list of Result
        In the order of ``cases``.
    """
    items = []
    for i, case in enumerate(cases):
        path = directory / f"case_{i:04d}_{case.kind}{suffix}"
        path.write_bytes(case.data)
        items.append((case, path))
    shards = [items[k::workers] for k in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        done = list(pool.map(lambda s: _run_shard(s, timeout, mem, child), shards))
    order = {id(c): i for i, c in enumerate(cases)}
    return sorted((r for shard in done for r in shard), key=lambda r: order[id(r.case)])


def table(results: Sequence[Result]) -> str:
    """Counts of outcomes by mutation kind, as a text table."""
    kinds = sorted({r.case.kind for r in results})
    counts = Counter((r.case.kind, r.outcome) for r in results)
    rows = [f"{'kind':14}" + "".join(f"{o:>9}" for o in OUTCOMES)]
    for kind in kinds:
        rows.append(f"{kind:14}" + "".join(f"{counts[kind, o]:>9}" for o in OUTCOMES))
    totals = Counter(r.outcome for r in results)
    rows.append(f"{'total':14}" + "".join(f"{totals[o]:>9}" for o in OUTCOMES))
    return "\n".join(rows)


