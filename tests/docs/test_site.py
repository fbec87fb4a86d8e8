"""The docs site builds offline with ``mkdocs build --strict`` (warnings are errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
API = [
    "xarray_rasteret.build", "xarray_rasteret.load", "xarray_rasteret.Collection",
    "xarray_rasteret.get_numpy", "xarray_rasteret.get_gdf", "xarray_rasteret.get_xarray",
    "xarray_rasteret.sample_points", "xarray_rasteret.track", "xarray_rasteret.read_stats",
    "xarray_rasteret.backend.RasteretBackendEntrypoint.open_dataset",
]


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",  # offline: every proxy is a dead port
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    missing = [name for name in API if f'id="{name}"' not in api]
    assert not missing, missing
    changelog = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in changelog
    for page in ("index.html", "reading/index.html", "storage/index.html", "design/index.html"):
        assert (site / page).is_file(), page
    # The quicklooks the build rendered from the sample, linked from the first page.
    index = (site / "index.html").read_text(encoding="utf-8")
    for png in ("img/sample_b04.png", "img/sample_ndvi.png"):
        assert (site / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert f'src="{png}"' in index, png
