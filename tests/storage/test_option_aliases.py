"""storage_options under boto3's, obstore's and fsspec's names read as under ours."""

from __future__ import annotations

from typing import Any

import pytest

from xarray_rasteret._sync import sync
from xarray_rasteret.storage import resolve_store
from xarray_rasteret.storage._router import canonical_options


def test_aliases_become_our_names() -> None:
    given = {
        "aws_access_key_id": "AK", "aws_secret_access_key": "SK", "aws_session_token": "T",
        "aws_region": "eu-west-1", "aws_endpoint": "http://127.0.0.1:9", "skip_signature": False,
        "request_payer": True, "timeout": 5,
    }  # fmt: skip
    assert canonical_options(given) == {
        "key": "AK", "secret": "SK", "token": "T", "region_name": "eu-west-1",
        "endpoint_url": "http://127.0.0.1:9", "anon": False, "requester_pays": True,
        "timeout": 5,
    }  # fmt: skip
    assert canonical_options({"region": "us-west-2"}) == {"region_name": "us-west-2"}


def test_unknown_and_conflicting_keys_are_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"unknown storage_options \['anonymous'\]; valid keys"):
        canonical_options({"anonymous": True})
    with pytest.raises(TypeError, match=r"give 'region_name' twice with different values"):
        canonical_options({"region_name": "a", "aws_region": "b"})
    assert canonical_options({"region_name": "a", "aws_region": "a"}) == {"region_name": "a"}


def test_boto3_names_read_from_s3(s3_server: Any, storage_blob: bytes) -> None:
    s3_server.upload("alias.bin", storage_blob)
    boto_names = {
        "aws_endpoint_url": s3_server.endpoint_url,
        "aws_region": "us-east-1",
        "aws_access_key_id": s3_server.storage_options["key"],
        "aws_secret_access_key": s3_server.storage_options["secret"],
    }
    ours, path = resolve_store(f"s3://{s3_server.bucket}/alias.bin",
                               storage_options=s3_server.storage_options)
    theirs, same = resolve_store(f"s3://{s3_server.bucket}/alias.bin", storage_options=boto_names)
    assert ours is theirs and path == same  # one store: the options are the same
    got = sync(theirs.get_range_async(same, start=10, end=5000))
    assert bytes(got) == storage_blob[10:5000]
