"""Run the benchmarks: ``python -m benchmarks [--quick] [--scenario S1] [--latency-ms 40]``.

Steps: generate the data (cached), serve it (HTTP range server and moto S3 in
a child process, with per-request latency), build the collection from the
served URLs, compute each scenario's physical floor and run its bare pipeline
(the floor's requests and decodes by a minimal client), run every tool in a
fresh process per run, compare pixels, and write
``benchmarks/results/results.md`` and ``results.png``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

from .bare import bare_seconds
from .data import CACHE, Manifest, Spec, ensure_data, stac_items
from .floor import Floor, compute_floor, measure_bandwidth
from .report import (
    KNOWN_DIFFERENCES,
    OURS,
    PEERS,
    REFERENCE_TOOL,
    Row,
    Section,
    check_targets,
    render_markdown,
    render_png,
)
from .scenarios import SCENARIOS, make_scenario
from .serve import BUCKET, Servers
from .worker import Job, run_in_fresh_process

__all__ = ["main"]

RESULTS = Path(__file__).parent / "results"
ORDER = ["Build", "S1", "S1-s3", "S2", "S3", "S4", "S5", "M"]
TOOLS = [*OURS, *PEERS]


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small data and few runs (< 2 minutes)")
    p.add_argument(
        "--scenario",
        action="append",
        choices=ORDER,
        help="run only these scenarios (repeatable); default all",
    )
    p.add_argument(
        "--tool", action="append", choices=TOOLS, help="run only these tools (repeatable)"
    )
    p.add_argument("--latency-ms", type=float, default=40.0, help="injected latency per request")
    p.add_argument("--repeats", type=int, default=None, help="runs per tool (default 5, quick 2)")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="stop repeating a tool once its runs took this many seconds (default 90, quick 10)",
    )
    p.add_argument("--max-concurrent", type=int, default=64, help="xarray-rasteret max_concurrent")
    p.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    return p.parse_args(argv)


def _build_collection(
    m: Manifest, base_url: str, path: Path, storage_options: dict | None
) -> str | None:
    """Build and save the collection the read scenarios use; None (and a message) if it fails."""
    import traceback

    import xarray_rasteret as xrr

    try:
        col = xrr.build(stac_items(m, base_url), storage_options=storage_options)
        col.to_parquet(path)
        return str(path)
    except Exception:
        print(f"!! building the collection from {base_url} failed:\n{traceback.format_exc()}")
        return None


def _compare(ref: np.ndarray, arr: np.ndarray) -> tuple[int, int]:
    if ref.shape != arr.shape:
        return max(ref.size, arr.size), max(ref.size, arr.size)
    return int(np.count_nonzero(ref != arr)), ref.size


def _allowed(scenario: str, tool: str, ref_tool: str) -> tuple[float, str] | None:
    """The share of pixels ``tool`` may differ from ``ref_tool`` by, and why (None: none).

    Without the scenario's exact reference in the run (``--tool``), the reference is
    itself an approximation: two tools' known differences from the exact result add up.
    """
    known = [KNOWN_DIFFERENCES.get((scenario, t)) for t in (tool, ref_tool)]
    found = [k for k in known if k is not None]
    if not found:
        return None
    return sum(k[0] for k in found), "; ".join(k[1] for k in found)


def _check_pixels(scenario: str, sec: Section, arrays: dict[str, np.ndarray]) -> str:
    """Compare every tool's first result with the reference tool's; a line for the log."""
    if not arrays:
        return "no results"
    ref_tool = REFERENCE_TOOL.get(scenario)
    if ref_tool not in arrays:
        ref_tool = next(iter(arrays))
    sec.reference = ref_tool
    ref = arrays[ref_tool]
    said = [f"{ref_tool} is the reference"]
    for tool, arr in arrays.items():
        if tool == ref_tool:
            continue
        row = sec.rows[tool]
        row.mismatches, row.compared = _compare(ref, arr)
        allowed = _allowed(scenario, tool, ref_tool)
        if allowed and row.mismatches and row.mismatches <= allowed[0] * row.compared:
            row.known = allowed[1]
        said.append(f"{tool} {row.mismatches} px differ" if row.mismatches else f"{tool} same")
    return "; ".join(said)


T = TypeVar("T")


def _counted(srv: Servers, mode: str, row: Row, run: Callable[[], T]) -> T:
    """``run()``, with the server's requests, bytes and CPU during it added to ``row``."""
    srv.reset(mode)
    cpu_before = srv.cpu_seconds()
    result = run()
    counts = srv.counts(mode)
    row.server_cpu.append(srv.cpu_seconds() - cpu_before)
    row.requests.append(counts.requests)
    row.bytes.append(counts.bytes)
    return result


def _run_bare(srv: Servers, mode: str, floor: Floor, repeats: int) -> Row:
    """The bare pipeline of ``floor`` (:mod:`.bare`), counted like a tool's runs."""
    row = Row("bare pipeline")
    if mode == "http":
        url, keys = srv.http_url, None
    else:
        url, keys = f"{srv.s3_endpoint}/{BUCKET}/", (srv.s3_key, srv.s3_secret, srv.s3_region)
    for _ in range(repeats):
        row.seconds += _counted(srv, mode, row, lambda: bare_seconds(url, floor, 1, keys))
    return row


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks; return the process exit code (1 if pixels differ or a tool failed)."""
    a = _args(argv)
    spec = Spec.quick() if a.quick else Spec()
    repeats = a.repeats or (2 if a.quick else 5)
    budget = a.budget or (10.0 if a.quick else 90.0)
    names = a.scenario or ORDER
    tools = a.tool or TOOLS
    latency = a.latency_ms / 1000
    a.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    m = ensure_data(spec)
    with_s3 = "S1-s3" in names
    print(f"data: {len(m.scenes)} scenes of {spec.size}x{spec.size} in {m.root}")
    with Servers(m.root, latency, with_s3=with_s3) as srv:
        srv.set_latency(0.0)
        biggest = max(m.all_files(), key=lambda f: os.path.getsize(os.path.join(m.root, f)))
        bandwidth = measure_bandwidth(srv.http_url + biggest)
        srv.set_latency(latency)
        print(f"loopback bandwidth {bandwidth / 1e6:.0f} MB/s; latency {a.latency_ms:g} ms")
        tmp = CACHE / "run"
        tmp.mkdir(parents=True, exist_ok=True)
        parquets = {
            "http": _build_collection(m, srv.http_url, tmp / "collection-http.parquet", None)
        }
        s3_options = None
        if with_s3:
            s3_options = {
                "endpoint_url": srv.s3_endpoint,
                "key": "testing",
                "secret": "testing",
                "region_name": "us-east-1",
            }
            parquets["s3"] = _build_collection(
                m, f"s3://{BUCKET}/", tmp / "collection-s3.parquet", s3_options
            )
        sections: list[Section] = []
        errors: list[str] = []
        for name in names:
            base = name.split("-")[0]
            mode = "s3" if name.endswith("-s3") else "http"
            scenario = make_scenario(base, m)
            label = "S1 (S3 API)" if name == "S1-s3" else name
            floor = compute_floor(scenario, m, latency, bandwidth)
            sec = Section(
                name,
                label,
                SCENARIOS[base] + (" (over moto S3)" if mode == "s3" else ""),
                floor,
                files=len(scenario.units),
                output_mb=scenario.empty().nbytes / 2**20,
            )
            if base != "M":
                sec.bare = _run_bare(srv, mode, floor, repeats)
                if sec.bare.ok:
                    print(f"  {label:12s} {'bare pipeline':17s} {sec.bare.median:8.3f} s")
            arrays: dict[str, np.ndarray] = {}
            base_url = srv.http_url if mode == "http" else f"s3://{BUCKET}/"
            for tool in tools:
                if base == "M" and tool not in OURS:
                    continue
                row = Row(tool)
                sec.rows[tool] = row
                if tool in OURS and parquets[mode] is None:
                    row.error = "the collection could not be built"
                    continue
                spent = 0.0
                for i in range(repeats):
                    job = Job(
                        tool,
                        base,
                        m.root,
                        mode,
                        base_url,
                        parquets[mode] or "",
                        srv.s3_endpoint,
                        a.max_concurrent,
                        return_array=(i == 0),
                    )
                    res = _counted(srv, mode, row, partial(run_in_fresh_process, job))
                    if res.na or res.error:
                        row.na, row.error = res.na, res.error
                        if res.error:
                            errors.append(f"## {label} / {tool}\n{res.error}")
                            print(
                                f"  {label:12s} {tool:17s} FAILED: "
                                f"{res.error.strip().splitlines()[-1]}"
                            )
                        else:
                            print(f"  {label:12s} {tool:17s} n/a ({res.na})")
                        break
                    row.seconds.append(res.seconds)
                    row.rss_peak_mb = np.nanmax([row.rss_peak_mb, res.rss_peak_mb])
                    row.rss_added_mb = np.nanmax([row.rss_added_mb, res.rss_added_mb])
                    if "open" in res.extra:
                        row.open_seconds.append(res.extra["open"])
                    if "decoded" in res.extra:
                        row.decoded = res.extra["decoded"]
                    if res.array is not None:
                        arrays[tool] = res.array
                    spent += res.seconds
                    if spent > budget:
                        break
                if row.ok:
                    print(
                        f"  {label:12s} {tool:17s} {row.median:8.3f} s  ({len(row.seconds)} runs, "
                        f"{statistics.median(row.requests):.0f} req, "
                        f"{statistics.median(row.bytes) / 1e6:.1f} MB)"
                    )
            print(f"  pixels: {_check_pixels(base, sec, arrays)}")
            del arrays
            print(
                f"{label}: floor {floor.seconds:.3f} s full-tile, "
                f"{floor.needed_seconds:.3f} s needed rows ({floor.needed_decoder}) "
                f"({floor.tiles} tiles, {floor.bytes / 1e6:.1f} MB); "
                + "; ".join(f"{'met' if ok else 'MISSED'}: {d}" for d, ok in check_targets(sec))
            )
            sections.append(sec)
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "data": f"{len(m.main)} + {len(m.next)} scenes of {spec.size}x{spec.size}, 3 bands, "
        f"{len(m.aois)} AOIs, {len(m.points)} points ({'quick' if a.quick else 'full'} mode)",
        "server": f"loopback HTTP range server, {a.latency_ms:g} ms per request; "
        f"measured bandwidth {bandwidth / 1e6:.0f} MB/s; it shares the cores with the tools "
        "(server CPU: what the serving process used during a run, on the same cores)",
        "runs": f"up to {repeats} per tool (fewer once a tool's runs exceed {budget:g} s), "
        "each in a fresh process (cold)",
        "memory": "peak RSS = VmHWM of the run's process; "
        "added = peak minus RSS at the run's start",
        "total time": f"{time.perf_counter() - t_start:.0f} s",
    }
    md = render_markdown(sections, meta)
    (a.out / "results.md").write_text(md)
    render_png(sections, a.out / "results.png")
    (a.out / "errors.log").write_text("\n\n".join(errors) + ("\n" if errors else ""))
    print()
    print(md)
    bad = [s.label for s in sections for r in s.rows.values() if r.mismatches and not r.known]
    if bad:
        print(f"!! pixels differ in: {sorted(set(bad))}")
    if errors:
        print(f"!! {len(errors)} tool(s) failed; tracebacks in {a.out / 'errors.log'}")
    return 1 if bad or errors else 0


if __name__ == "__main__":
    sys.exit(main())
