"""Signed reads on a 2-process ``LocalCluster`` that outlive a token's lifetime.

The blob server (tests/token_server.py) refuses expired tokens; its tokens live
two seconds and it answers each request late, so each worker's tasks span
more than one token. Each worker signs its own requests with the pickled signer
(settings only, no token), renews tokens before they expire, and every pixel
equals rasterio's; no token reaches the collection or the Dataset.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from token_server import BLOBS, SASServers, signed_collection, write_blobs
from xarray_rasteret.data_sources import PlanetaryComputerSigner

LIFETIME = 2.0
@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_blobs(tmp_path_factory.mktemp("dist-blobs"), width=8 * 2048, height=32,
                       seed=50, blockxsize=256, blockysize=32, predictor=2)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None)
        as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.mark.slow
def test_cluster_compute_outlives_tokens_and_reads_every_pixel(root: Path, client) -> None:
    with SASServers(root, lifetime=LIFETIME) as sas:
        col = signed_collection(root, sas)
        sign = PlanetaryComputerSigner(sas_api=sas.api_url)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The specified chunks separate", UserWarning)
            ds = xr.open_dataset(col, engine="rasteret", chunks={}, sign=sign)
        # Default chunks are 2048 px a side: eight tasks, four on a worker (about).
        assert ds.B04.data.npartitions == 8
        # Each task takes a third of a token's life: a worker's tasks span two tokens.
        sas.blobs.set_faults(latency=0.35 * LIFETIME)
        started = time.monotonic()
        got = client.compute(ds.B04).result()
        elapsed = time.monotonic() - started
        for i in range(3):
            with rasterio.open(root / BLOBS / f"s{i}_B04.tif") as r:
                np.testing.assert_array_equal(got.values[i], r.read(1))
        assert elapsed > 1.5 * LIFETIME
        # Two workers, each renewing its token before it expires: more than one each.
        assert sas.issued.count >= 3
        tokens = sas.issued.all_tokens()
        path = root.parent / "dist-col.parquet"
        col.to_parquet(path)
        saved = path.read_bytes()
        assert b"sig=" not in saved and not any(t.encode() in saved for t in tokens)
        shown = repr(ds.attrs) + repr(ds.B04.attrs) + repr(ds.B04.encoding) + repr(got.attrs)
        assert "sig=" not in shown and not any(t in shown for t in tokens)
