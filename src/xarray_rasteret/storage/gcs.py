"""Byte ranges from Google Cloud Storage: ranged GETs over its XML API, over aiohttp.

``gs://bucket/key`` is read at ``https://storage.googleapis.com/bucket/key``
(or ``{endpoint_url}/bucket/key``, for an emulator), anonymously unless a
bearer token (an OAuth2 access token) is given. Everything else (retries,
redirects, body checks, redaction) is :class:`~.http.HTTPStore`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

import aiohttp

from ._cloud_urls import parse_gcs_url, split_gcs_path
from ._retry import not_found
from .http import HTTPStore, answer_error
from .s3 import error_code

__all__ = ["GCS_ENDPOINT", "GCSStore", "parse_gcs_url", "split_gcs_path"]

GCS_ENDPOINT = "https://storage.googleapis.com"
"""Where ``gs://`` objects are read unless ``endpoint_url`` says otherwise."""

class GCSStore(HTTPStore):
    """Read byte ranges of Google Cloud Storage objects (paths ``gs://bucket/key``, ``bucket/key``).

    Each range is one ``GET`` with a ``Range`` header over the XML API, on a
    pooled aiohttp session per event loop; the store holds only options, so
    it pickles for dask.

    Parameters
    ----------
    bearer_token
        An OAuth2 access token (``gcloud auth print-access-token``, or
        ``google.auth`` credentials' ``.token``), sent as ``Authorization:
        Bearer``; None reads anonymously (public buckets). Tokens expire
        (usually after an hour) and are not refreshed here.
    endpoint_url
        Where the objects are served (an emulator such as fake-gcs-server:
        ``http://127.0.0.1:4443``); objects are read at
        ``{endpoint_url}/{bucket}/{key}``. Default: :data:`GCS_ENDPOINT`.
    headers
        Extra request headers (never shown in messages).
    timeout, max_attempts, backoff, max_backoff, max_connections
        As for :class:`~xarray_rasteret.storage.HTTPStore`.

    Examples
    --------
    >>> store = GCSStore()
    >>> store._target("gs://gcp-public-data-landsat/LC08/01/044/034/a.TIF")
    'https://storage.googleapis.com/gcp-public-data-landsat/LC08/01/044/034/a.TIF'
    """

    def __init__(
        self,
        *,
        bearer_token: str | None = None,
        endpoint_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = 30.0,
        max_attempts: int = 5,
        backoff: float = 0.1,
        max_backoff: float = 10.0,
        max_connections: int = 256,
    ) -> None:
        endpoint = endpoint_url or GCS_ENDPOINT
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise ValueError(
                "storage_options['endpoint_url'] for gs:// must be an http(s):// URL, "
                f"not {endpoint!r}"
            )
        super().__init__(
            headers=headers,
            bearer_token=bearer_token,
            netrc=False,
            timeout=timeout,
            max_attempts=max_attempts,
            backoff=backoff,
            max_backoff=max_backoff,
            max_connections=max_connections,
        )
        self.endpoint_url = endpoint.rstrip("/")
        self._anonymous = not any(k.lower() == "authorization" for k in self.headers)

    def __repr__(self) -> str:
        creds = "anonymous" if self._anonymous else "bearer token"
        return f"GCSStore(credentials={creds}, endpoint_url={self.endpoint_url!r})"

    def _target(self, path: str) -> str:
        bucket, key = split_gcs_path(path)
        return f"{self.endpoint_url}/{quote(bucket, safe='')}/{quote(key, safe='/')}"

    def _display(self, path: str) -> str:
        return "gs://{}/{}".format(*split_gcs_path(path))

    def _refusal(
        self, resp: aiohttp.ClientResponse, path: str, what: str, body: bytes
    ) -> Exception:
        shown, code = self._display(path), error_code(body)
        if resp.status in (404, 410) or code in ("NoSuchKey", "NoSuchBucket"):
            return not_found(shown)
        if code == "UserProjectMissing":
            hint = "the bucket is requester-pays, which this store does not read"
        elif self._anonymous:
            hint = (
                "the object is not public: pass an OAuth2 access token as storage_options="
                "{'bearer_token': ...} (e.g. from `gcloud auth print-access-token`)"
            )
        else:
            hint = (
                "check the bearer_token (access tokens expire, usually after an hour) and "
                "that its account may read the object (storage.objects.get)"
            )
        return answer_error(resp, shown, what, detail=code, hint=hint)
