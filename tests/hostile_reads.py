"""Read every :mod:`hostile_servers` mode in guarded subprocesses and classify each read.

Nothing here imports pytest. :func:`run_cases` reads each case with
:class:`~xarray_rasteret.storage.HTTPStore` in child processes under
``RLIMIT_AS``, with a deadline per case kept by the parent (a hang cannot be
interrupted from inside), and classifies each read: ``ok`` (right bytes),
``clear`` (a package error naming the redacted URL), ``unnamed``, ``leaked`` (a
secret in the message), ``other`` (another exception type), ``wrong`` (wrong
bytes), ``memory`` (MemoryError, or peak RSS grown past the bound), ``death``,
``timeout``. A child that dies or hangs is replaced for the cases that remain.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["OUTCOMES", "Result", "classify", "run_cases", "table"]

OUTCOMES = ("ok", "clear", "unnamed", "leaked", "other", "wrong", "memory", "death", "timeout")

# One child reads cases (JSON lines) and answers each with a JSON line. Each read
# is one op; its result carries the error's type and text, or whether the bytes
# were right. Peak RSS is measured around each case (ru_maxrss only grows).
_CHILD = r"""
import asyncio, json, resource, sys, traceback
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
sys.path.insert(0, sys.argv[2])
from hostile_servers import object_bytes
from xarray_rasteret.errors import RasteretError
from xarray_rasteret.storage import HTTPStore, get_range_checked

def text(e):
    seen, out = set(), []
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        out += [type(e).__name__, str(e), repr(e), *getattr(e, "__notes__", [])]
        e = e.__cause__ or e.__context__
    return "\n".join(out)

async def ops(case):
    url, size = case["url"], case["size"]
    store = HTTPStore(headers=case["headers"], timeout=case["timeout"], max_attempts=2,
                      backoff=0.001, max_backoff=0.01)
    async def head():
        meta = await store.head_async(url)
        return meta["size"] == size
    async def first():
        body, total, _ = await store.get_range_info_async(url, start=0, end=16384)
        return body == object_bytes(0, 16384) and total in (size, None)
    async def middle():
        return await store.get_range_async(url, start=100_000, end=100_500) == object_bytes(
            100_000, 100_500)
    async def far():
        return await store.get_range_async(url, start=size - 1000, end=size) == object_bytes(
            size - 1000, size)
    async def checked():
        got = await get_range_checked(store, url, start=5, end=1005, size=size, etag="v1")
        return bytes(got) == object_bytes(5, 1005)
    async def past_end():
        return await store.get_range_async(url, start=size + 10, end=size + 20) == b""
    out = {}
    for name, op in [("head", head), ("first", first), ("middle", middle), ("far", far),
                     ("checked", checked), ("past_end", past_end)]:
        try:
            out[name] = {"outcome": "ok" if await op() else "wrong"}
        except MemoryError:
            out[name] = {"outcome": "memory"}
        except Exception as e:
            out[name] = {"outcome": "error", "type": type(e).__name__,
                         "rasteret": isinstance(e, RasteretError), "message": text(e)}
    await store.close()
    return out

for line in sys.stdin:
    case = json.loads(line)
    print("start", flush=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        res = {"ops": asyncio.run(ops(case))}
    except MemoryError:
        res = {"ops": {"all": {"outcome": "memory"}}}
    res["rss_growth_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps(res), flush=True)
"""


@dataclass(frozen=True)
class Result:
    """How one read of one mode ended."""

    mode: str
    op: str
    outcome: str
    detail: str = ""


def classify(
    mode: str, op: str, res: dict[str, Any], shown: str, secrets: Sequence[str]
) -> Result:
    """The outcome of one op: ``clear`` only for a package error naming ``shown``, no secret."""
    if res["outcome"] != "error":
        return Result(mode, op, res["outcome"])
    message = str(res["message"])
    detail = f"{res['type']}: {message.splitlines()[1] if message.count(chr(10)) else message}"
    if any(s in message for s in secrets):
        return Result(mode, op, "leaked", detail)
    if not res["rasteret"]:
        return Result(mode, op, "other", detail)
    return Result(mode, op, "clear" if shown in message else "unnamed", detail)


def _run_child(
    cases: Sequence[dict[str, Any]], timeout: float, mem: int, here: str
) -> list[dict[str, Any] | str]:
    """Run ``cases`` in one child; a death or a timeout ends it (returned as a string)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(mem), here],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    pump = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    pump.start()
    out: list[dict[str, Any] | str] = []
    try:
        for i, case in enumerate(cases):
            try:
                proc.stdin.write(json.dumps(case) + "\n")
                proc.stdin.flush()
            except BrokenPipeError:
                out.append("death")
                break
            try:
                started = lines.get(timeout=60.0 if i == 0 else timeout)  # first: the import
                line = lines.get(timeout=timeout) if started == "start\n" else ""
            except queue.Empty:
                out.append("timeout")
                break
            if not line:
                out.append("death")
                break
            out.append(json.loads(line))
    finally:
        proc.kill()
        proc.wait()
        pump.join(timeout=10)
        proc.stdin.close()
        proc.stdout.close()
    return out


def _pump(stream: Any, lines: queue.Queue[str]) -> None:
    """Move the child's output lines to ``lines``; "" marks its end."""
    for line in stream:
        lines.put(line)
    lines.put("")


def run_cases(
    cases: Sequence[dict[str, Any]],
    *,
    timeout: float = 20.0,
    mem: int = 2 << 30,
    rss_bound_kib: int = 64 << 10,
    here: str,
) -> list[Result]:
    """Read every case in guarded children; restart a child after a death or a timeout.

    Parameters
    ----------
    cases
        Dicts with ``mode``, ``url``, ``shown`` (its redacted form), ``headers``,
        ``size``, ``timeout`` (the store's, per attempt) and ``secrets``.
    timeout
        Seconds one case (every op) may take.
    mem
        ``RLIMIT_AS`` of the children, in bytes.
    rss_bound_kib
        Peak RSS growth during one case that counts as a memory blow-up.
    here
        The directory of this module (the child imports it).
    """
    results: list[Result] = []
    rest = list(cases)
    while rest:
        answers = _run_child(rest, timeout, mem, here)
        for case, answer in zip(rest, answers, strict=False):
            if isinstance(answer, str):
                results.append(Result(case["mode"], "all", answer))
                continue
            if answer["rss_growth_kib"] > rss_bound_kib:
                detail = f"peak RSS grew {answer['rss_growth_kib'] // 1024} MiB"
                results.append(Result(case["mode"], "all", "memory", detail))
                continue
            for op, res in answer["ops"].items():
                results.append(classify(case["mode"], op, res, case["shown"], case["secrets"]))
        rest = rest[len(answers) :]
    return results


def table(results: Sequence[Result]) -> str:
    """Counts of outcomes per mode (all ops), as a text table."""
    modes = list(dict.fromkeys(r.mode for r in results))
    counts = Counter((r.mode, r.outcome) for r in results)
    width = max(len(m) for m in modes) + 2
    rows = [f"{'mode':{width}}" + "".join(f"{o:>8}" for o in OUTCOMES)]
    rows += [f"{m:{width}}" + "".join(f"{counts[m, o]:>8}" for o in OUTCOMES) for m in modes]
    totals = Counter(r.outcome for r in results)
    rows.append(f"{'total':{width}}" + "".join(f"{totals[o]:>8}" for o in OUTCOMES))
    return "\n".join(rows)
