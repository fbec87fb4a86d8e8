"""botocore's S3 models: found without listing every service, decoded without a
collector pass, shared by every client; the clients they make read from a real
S3 API server."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import AioSession
from botocore.loaders import JSONFileLoader, Loader

from xarray_rasteret._sync import sync
from xarray_rasteret.storage import resolve_store
from xarray_rasteret.storage._s3_models import _collector_paused, _loader_for, share_s3_models


def test_loader_answers_for_s3_as_botocore_does() -> None:
    mine, theirs = _loader_for(None), Loader()
    for type_name in ("service-2", "endpoint-rule-set-1"):
        assert "s3" in theirs.list_available_services(type_name)
        assert mine.list_available_services(type_name) == ["s3"]
        assert mine.load_service_model("s3", type_name) == theirs.load_service_model(
            "s3", type_name
        )
    assert mine.load_data("endpoints") == theirs.load_data("endpoints")


def test_loader_lists_everything_when_s3_has_no_such_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed: list[str] = []
    full_listing = Loader.list_available_services

    def spy(self: Loader, type_name: str) -> list[str]:
        listed.append(type_name)
        return full_listing(self, type_name)

    monkeypatch.setattr(Loader, "list_available_services", spy)
    loader = _loader_for(None)
    assert listed == []  # S3's own models were found without the full listing
    assert loader.list_available_services("no-such-type-1") == []
    assert listed == ["no-such-type-1"]


def test_models_are_decoded_with_the_collector_paused(monkeypatch: pytest.MonkeyPatch) -> None:
    collecting: list[bool] = []
    decode = JSONFileLoader.load_file

    def spy(self: JSONFileLoader, file_path: str) -> Any:
        collecting.append(gc.isenabled())
        return decode(self, file_path)

    monkeypatch.setattr(JSONFileLoader, "load_file", spy)
    _loader_for(None)
    assert len(collecting) >= 3  # endpoints, the S3 API, S3's endpoint rules
    assert not any(collecting)
    assert gc.isenabled()


def test_collector_pause_restores_the_state_it_found() -> None:
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        with _collector_paused():
            assert not gc.isenabled()
            1 / 0
    assert gc.isenabled()
    gc.disable()
    try:
        with _collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the caller's choice is kept
    finally:
        gc.enable()


def test_sessions_share_one_loader_per_data_path(tmp_path: Path) -> None:
    first = share_s3_models(AioSession()).get_component("data_loader")
    assert share_s3_models(AioSession()).get_component("data_loader") is first
    other = AioSession()
    other.set_config_variable("data_path", str(tmp_path))
    loader = share_s3_models(other).get_component("data_loader")
    assert loader is not first
    assert str(tmp_path) in loader.search_paths
    assert loader.list_available_services("service-2") == ["s3"]


def test_clients_made_with_the_shared_models_read(s3_server: Any) -> None:
    blob = bytes(range(256)) * 64
    s3_server.upload("models.bin", blob)
    store, path = resolve_store(
        f"s3://{s3_server.bucket}/models.bin", storage_options=s3_server.storage_options
    )
    assert sync(store.get_range_async(path, start=100, end=400)) == blob[100:400]
