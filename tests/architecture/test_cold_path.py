"""What a first read imports: only what it needs.

aiohttp (over 100 ms to import here), aiobotocore and pyarrow.dataset serve
network stores and partitioned collections; a read of a local collection must
not wait for them (issue 28, the cold path). Each case runs in a fresh
interpreter, as a user's first cell does.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import xarray_rasteret as xrr
from xarray_rasteret.cli import sample_items_path

HEAVY = (
    "aiohttp", "aiobotocore", "botocore", "pyarrow.dataset", "pystac_client", "obstore", "dask",
)


def _imported_after(code: str) -> list[str]:
    probe = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps([m for m in {HEAVY!r} if sys.modules.get(m) is not None]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_package_imports_none_of_them() -> None:
    assert _imported_after("import xarray_rasteret") == []


def test_a_local_read_imports_none_of_them(tmp_path) -> None:
    coll = tmp_path / "c.parquet"
    xrr.build(str(sample_items_path())).to_parquet(str(coll))
    code = f"""
        import xarray as xr
        ds = xr.open_dataset({str(coll)!r}, engine="rasteret")
        ds["B04"].isel(time=0, x=slice(0, 64), y=slice(0, 64)).values
    """
    # rioxarray (xarray loads every engine) imports botocore and dask itself.
    got = [m for m in _imported_after(code) if m not in ("botocore", "dask")]
    assert got == []


def test_an_http_store_imports_aiohttp_when_made() -> None:
    code = """
        from xarray_rasteret.storage import resolve_store
        import sys
        assert "aiohttp" not in sys.modules
        resolve_store("https://example.com/a.tif")
    """
    assert "aiohttp" in _imported_after(code)


def test_a_read_without_dask_installed(tmp_path) -> None:
    # dask is optional: a selection of a lazy (unchunked) dataset must not import it.
    coll = tmp_path / "c.parquet"
    xrr.build(str(sample_items_path())).to_parquet(str(coll))
    code = f"""
        import sys
        sys.modules["dask"] = sys.modules["distributed"] = None  # as if not installed
        import xarray as xr
        ds = xr.open_dataset({str(coll)!r}, engine="rasteret")
        assert ds["B04"].isel(time=0, x=slice(0, 64), y=slice(0, 64)).values.shape == (64, 64)
    """
    assert "dask" not in _imported_after(code)
