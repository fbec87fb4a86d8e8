"""One measured run in a fresh process.

Every run is a new interpreter (``spawn``) that imports numpy, rasterio,
rioxarray, xarray and xarray-rasteret, then starts the clock: it starts cold
(no GDAL header/block cache, no open connections, no event loop) and import
time is not measured. Not ``fork``/``forkserver``: a forked child pays a
copy-on-write fault on every page of the parent's heap it touches (a 2 MiB
copy per transparent huge page), which added 25-50 ms to every run here.

Results: a tool returns the scenario's array, or a function that lays its
results out as that array; the function is called after the clock stops, since
gathering every window into one array is the harness's need, not a user's
(a user of any tool keeps the arrays the tool returns).

Memory: the run reports the process's peak RSS (``VmHWM`` at the end of the
run: it restarts at ``exec``, while ``ru_maxrss`` keeps the high-water mark of
the parent this process was forked from) and that peak minus the RSS when the
run started (after imports and setup), which is the memory the run itself added
at its peak.
"""

from __future__ import annotations

import hashlib
import importlib
import multiprocessing as mp
import resource
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psutil
import rasterio  # noqa: F401  (imported before the clock starts)
import rioxarray  # noqa: F401
import xarray  # noqa: F401

import xarray_rasteret  # noqa: F401

__all__ = ["Job", "RunResult", "run_in_fresh_process"]

PRELOAD = [
    "pyarrow.parquet",  # imported lazily by load(): an import cost, like the peers' imports
    "xarray_rasteret.helpers",
    "xarray_rasteret._lazy.mosaic",
    "xarray_rasteret.helpers._warp",
    "xarray_rasteret.geo.reproject",
    "xarray_rasteret.geo.overviews",
    "xarray_rasteret.geo._inputs",
    "xarray_rasteret.geo.geotiff",  # imported by the first header parse (build)
    # Codec modules imagecodecs loads on first use, and pyarrow's pandas metadata reader.
    "imagecodecs._deflate",
    "imagecodecs._zlib",
    "imagecodecs._imcd",
    "pyarrow.pandas_compat",
    "pyarrow.vendored.version",
    "xarray_rasteret.backend",
    "xarray_rasteret.collection",
    "xarray_rasteret.ingest",
    "xarray_rasteret._lazy.dataset",
    "xarray_rasteret.storage",
    # The network stores (and aiohttp, aiobotocore's credential chain under them) are
    # imported when the first is made: an import cost, preloaded like the peers'.
    "xarray_rasteret.storage.http",
    "xarray_rasteret.storage.s3",
]
for _name in PRELOAD:
    importlib.import_module(_name)

# xarray imports every installed engine (rioxarray pulls in rasterio and dask) on the
# first open_dataset: an import cost, preloaded like the peers' imports.
xarray.backends.list_engines()


@dataclass
class Job:
    """What to run: a tool on a scenario against a served copy of the data."""

    tool: str
    scenario: str
    root: str
    mode: str  # "http" or "s3"
    base_url: str
    parquet: str
    s3_endpoint: str | None = None
    max_concurrent: int = 64
    return_array: bool = False


@dataclass
class RunResult:
    """What one run measured."""

    seconds: float = float("nan")
    digest: str = ""
    array: np.ndarray | None = None
    rss_peak_mb: float = float("nan")
    rss_added_mb: float = float("nan")
    lib_requests: int | None = None
    lib_bytes: int | None = None
    na: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _peak_rss() -> int:
    """Peak resident set of this process since its ``exec``, in bytes."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    # Elsewhere: ru_maxrss (kB on Linux, bytes on macOS), which may include the
    # parent's peak before exec.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _storage_options(job: Job) -> dict[str, Any] | None:
    if job.mode != "s3":
        return None
    return {
        "endpoint_url": job.s3_endpoint,
        "key": "testing",
        "secret": "testing",
        "region_name": "us-east-1",
    }


def _execute(job: Job) -> RunResult:
    from .data import Manifest
    from .ours import OURS, NotAvailable
    from .peers import gdal_config, run_peer
    from .scenarios import make_scenario
    from .serve import BUCKET

    res = RunResult()
    m = Manifest.load(job.root)
    scenario = make_scenario(job.scenario, m)
    if job.mode == "s3":

        def url_of(f: str) -> str:
            return f"/vsis3/{BUCKET}/{f}"
    else:

        def url_of(f: str) -> str:
            return "/vsicurl/" + job.base_url + f

    config = gdal_config(job.mode, job.s3_endpoint)
    options = {
        "storage_options": _storage_options(job),
        "max_concurrent": job.max_concurrent,
        "base_url": job.base_url,
    }
    proc = psutil.Process()
    base = proc.memory_info().rss
    try:
        if job.tool in OURS:
            import xarray_rasteret as xrr

            from .ours import PHASES, prepare

            prepare(scenario, m, options)
            PHASES.clear()
            t0 = time.perf_counter()
            with xrr.track() as stats:
                out = OURS[job.tool](scenario, m, job.parquet, options)
            res.seconds = time.perf_counter() - t0
            res.lib_requests, res.lib_bytes = stats.requests, stats.bytes
            if stats.tile_bytes:
                # How far the partial inflate went: bytes decoded of the tiles' whole.
                res.extra["decoded"] = (stats.decoded_bytes, stats.tile_bytes)
            res.extra.update(PHASES)
        else:
            t0 = time.perf_counter()
            out = run_peer(job.tool, scenario, url_of, config)
            res.seconds = time.perf_counter() - t0
    except NotAvailable as err:
        res.na = str(err)
        return res
    except Exception:
        res.error = traceback.format_exc()
        return res
    peak = _peak_rss()
    res.rss_peak_mb = peak / 2**20
    res.rss_added_mb = (peak - base) / 2**20
    if callable(out):
        out = out()  # the harness's layout of the results, after the clock (see Tool)
    out = np.ascontiguousarray(out)
    res.digest = hashlib.sha1(out.tobytes()).hexdigest()
    if job.return_array:
        res.array = out
    return res


def _child(job: Job, conn: Any) -> None:
    try:
        conn.send(_execute(job))
    except Exception:
        conn.send(RunResult(error=traceback.format_exc()))
    conn.close()


_CTX: Any = None


def _context() -> Any:
    global _CTX
    if _CTX is None:
        _CTX = mp.get_context("spawn")
    return _CTX


def run_in_fresh_process(job: Job, timeout: float = 1800.0) -> RunResult:
    """Run ``job`` in a new interpreter (imports done before the clock starts)."""
    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_child, args=(job, child))
    p.start()
    child.close()
    if not parent.poll(timeout):
        p.kill()
        p.join()
        return RunResult(error=f"timed out after {timeout} s")
    try:
        res = parent.recv()
    except EOFError:
        res = RunResult(error=f"worker died (exit code {p.exitcode})")
    p.join()
    return res
