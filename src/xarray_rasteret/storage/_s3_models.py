"""botocore's S3 models, decoded once per process and shared by every S3 client.

Making the first S3 client of a process decodes three of botocore's JSON files
(the endpoints of every AWS service, 1.2 MB; the S3 API; S3's endpoint rules)
and lists every service directory botocore has (~400) to check that "s3" is
one of them, once per model type. Measured in a process that has imported
xarray: 145-160 ms, of which ~50 ms is one full pass of Python's cyclic
garbage collector, which the ~30,000 container objects they add trigger.

Here the process keeps one loader per data path, which checks for S3's models
alone and decodes them with the collector paused: the first client takes
60-65 ms, later ones (other event loops, other options) a few milliseconds.
The pause moves the collector's pass, it does not remove it: the decoded
objects count towards the next full pass as any others do, and in a fresh
process reading S1 of the benchmarks over S3 that pass came after the read.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader

__all__ = ["share_s3_models"]

_MODEL_TYPES = ("service-2", "endpoint-rule-set-1")
"""The S3 model types a client loads (its API, its endpoint rules)."""


class _S3Loader(Loader):
    """botocore's data loader, for sessions that only make S3 clients.

    botocore checks a service name by listing every service that has a model
    of the type asked for (~15 ms per type). This loader answers for "s3" by
    looking for S3's own model versions, and lists everything only if there
    are none.
    """

    def list_available_services(self, type_name: str) -> list[str]:
        try:
            self.determine_latest_version("s3", type_name)
        except DataNotFoundError:
            return super().list_available_services(type_name)
        return ["s3"]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (if it runs) for a burst of allocations.

    Objects made meanwhile are collected as usual once it runs again.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _loader_for(data_path: str | None) -> _S3Loader:
    """A loader for ``data_path`` (botocore's ``data_path`` setting), with S3's models in it."""
    extra = None
    if data_path:
        extra = [os.path.expanduser(os.path.expandvars(p)) for p in data_path.split(os.pathsep)]
    loader = _S3Loader(extra_search_paths=extra)
    with _collector_paused():
        loader.load_data("endpoints")
        for type_name in _MODEL_TYPES:
            loader.load_service_model("s3", type_name)
    return loader


_loaders: dict[str | None, _S3Loader] = {}
_loaders_lock = threading.Lock()


def share_s3_models(session: Any) -> Any:
    """``session``, with the process's S3 model loader for its data path.

    Parameters
    ----------
    session
        A botocore (or aiobotocore) session that will make S3 clients only.

    Returns
    -------
    session
        The same session; its ``data_loader`` component is the shared loader.
    """
    key = session.get_config_variable("data_path")
    with _loaders_lock:
        loader = _loaders.get(key)
        if loader is None:
            loader = _loaders[key] = _loader_for(key)
    session.register_component("data_loader", loader)
    return session
