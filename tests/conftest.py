"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servers import RangeHTTPServer, S3Server

# ---------------------------------------------------------------------------------------
# storage: loopback HTTP range server and moto S3 server (owner: storage layer)
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _http_server_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RangeHTTPServer]:
    root = tmp_path_factory.mktemp("http-root")
    with RangeHTTPServer(root) as server:
        yield server


@pytest.fixture
def http_server(_http_server_session: RangeHTTPServer) -> Iterator[RangeHTTPServer]:
    """A range server on 127.0.0.1 serving ``http_server.root``; faults and counters reset.

    Put files in ``Path(http_server.root)``, read them at ``http_server.url(name)``,
    inject faults with ``http_server.set_faults(p_503=0.2, ...)``, read
    ``http_server.stats``.
    """
    _http_server_session.reset()
    yield _http_server_session
    _http_server_session.reset()


@dataclass
class S3Fixture:
    """What a test needs to reach the moto S3 server."""

    server: S3Server
    endpoint_url: str
    bucket: str

    @property
    def storage_options(self) -> dict[str, str]:
        """Options for our stores: endpoint and the dummy credentials."""
        return {
            "endpoint_url": self.endpoint_url,
            "region_name": S3Server.region,
            "key": S3Server.key,
            "secret": S3Server.secret,
        }

    @property
    def gate(self) -> Any:
        """The server's :class:`s3_gate.S3Gate` (signature checks, scripted answers)."""
        return self.server.gate

    def upload(self, key: str, data: bytes, *, public: bool = False) -> str:
        """Put ``data`` at ``key`` in the test bucket; returns the ETag."""
        return self.server.upload(self.bucket, key, data, public=public)


@pytest.fixture(scope="session")
def _s3_server_session() -> Iterator[S3Server]:
    with S3Server() as server:
        server.create_bucket("test-bucket")
        yield server


@pytest.fixture
def s3_server(_s3_server_session: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Fixture:
    """moto S3 on 127.0.0.1 with bucket ``test-bucket``; dummy AWS_* env for this test only."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3Server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3Server.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", S3Server.region)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe IMDS
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    _s3_server_session.gate.reset()
    return S3Fixture(_s3_server_session, _s3_server_session.endpoint_url, "test-bucket")


@pytest.fixture(scope="session")
def storage_blob() -> bytes:
    """Deterministic test bytes (256 KiB + 123, so ranges end unevenly)."""
    import random

    return random.Random(42).randbytes(256 * 1024 + 123)


# --------------------------------------------------------------------------- end storage


# ---------------------------------------------------------------------------------------
# docs and cli: the embedded sample in a folder (owner: docs/cli)
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded sample (``items.json``, its COGs) copied, plus ``s2.parquet`` built from it.

    Shared by the session: copy it before changing anything in it.
    """
    import shutil

    import xarray_rasteret as xrr
    from xarray_rasteret.cli import sample_items_path

    folder = tmp_path_factory.mktemp("sample")
    shutil.copytree(sample_items_path().parent, folder, dirs_exist_ok=True)
    xrr.build(folder / "items.json", bands=["B04", "B08"]).to_parquet(folder / "s2.parquet")
    return folder


# ------------------------------------------------------------------------- end docs and cli
