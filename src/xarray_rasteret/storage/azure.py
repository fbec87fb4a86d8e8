"""Byte ranges from Azure Blob Storage: ranged GETs with ``x-ms-version``, over aiohttp.

A blob is named by its account, container and name; the store's paths are
``account/container/blob``, optionally with the blob's own query string (a
SAS given in the href). It is read at
``https://{account}.blob.core.windows.net/{container}/{blob}`` (or
``{endpoint_url}/{account}/{container}/{blob}``, Azurite's layout),
anonymously, with a SAS token, or with a bearer token. Everything else
(retries, redirects, body checks, redaction) is :class:`~.http.HTTPStore`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

import aiohttp

from ..errors import ObjectNotFoundError, PermissionDeniedError
from ._cloud_urls import AZURE_SCHEMES, azure_path, parse_azure_url, split_azure_path
from .http import HTTPStore, answer_error
from .s3 import error_code

__all__ = [
    "API_VERSION",
    "AzureStore",
    "azure_path",
    "parse_azure_url",
    "split_azure_path",
]

API_VERSION = "2021-12-02"
"""The ``x-ms-version`` sent: a Blob service version every current service and Azurite know."""

SCHEMES = AZURE_SCHEMES


def _expiry(query: str) -> datetime | None:
    """The ``se`` (signed expiry) of a SAS, as an aware datetime; None if absent or unreadable."""
    value = dict(parse_qsl(query)).get("se")
    try:
        when = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when and when.tzinfo is None else when


def _sas(token: object) -> str | None:
    if token is None:
        return None
    if not isinstance(token, str) or "sig=" not in token:
        raise ValueError(
            "storage_options['sas_token'] must be a shared access signature (a query string "
            "such as 'sv=...&se=...&sp=r&sig=...', with or without the leading '?')"
        )
    return token.strip().lstrip("?")


class AzureStore(HTTPStore):
    """Read byte ranges of Azure blobs; paths are ``account/container/blob[?sas]``.

    Each range is one ``GET`` with ``Range`` and ``x-ms-version`` headers, on a
    pooled aiohttp session per event loop; the store holds only options, so
    it pickles for dask.

    Parameters
    ----------
    sas_token
        A shared access signature (``sv=...&se=...&sig=...``) appended to every
        blob URL whose href carries no query of its own (an href's own SAS wins).
    bearer_token
        An Azure AD (Entra ID) access token for ``https://storage.azure.com/``,
        sent as ``Authorization: Bearer``; not with ``sas_token``.
    endpoint_url
        Where blobs are served (Azurite: ``http://127.0.0.1:10000``); blobs are
        read at ``{endpoint_url}/{account}/{container}/{blob}`` (an endpoint that
        already ends with ``/{account}`` is not given it twice). Default:
        ``https://{account}.blob.core.windows.net``.
    headers
        Extra request headers (never shown in messages).
    timeout, max_attempts, backoff, max_backoff, max_connections
        As for :class:`~xarray_rasteret.storage.HTTPStore`.

    Examples
    --------
    >>> store = AzureStore()
    >>> store._target("acct/cont/a.tif")
    'https://acct.blob.core.windows.net/cont/a.tif'
    """

    def __init__(
        self,
        *,
        sas_token: str | None = None,
        bearer_token: str | None = None,
        endpoint_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = 30.0,
        max_attempts: int = 5,
        backoff: float = 0.1,
        max_backoff: float = 10.0,
        max_connections: int = 256,
    ) -> None:
        if sas_token is not None and bearer_token is not None:
            raise ValueError(
                "storage_options give both 'sas_token' and 'bearer_token' for Azure; give one"
            )
        if endpoint_url is not None and (
            not isinstance(endpoint_url, str)
            or not endpoint_url.startswith(("http://", "https://"))
        ):
            raise ValueError(
                "storage_options['endpoint_url'] for Azure must be an http(s):// URL, "
                f"not {endpoint_url!r}"
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
        self._sas = _sas(sas_token)
        self.endpoint_url = endpoint_url.rstrip("/") if endpoint_url else None

    def __repr__(self) -> str:
        bearer = "Authorization" in self.headers
        creds = "SAS" if self._sas else ("bearer token" if bearer else "anonymous")
        return f"AzureStore(credentials={creds}, endpoint_url={self.endpoint_url!r})"

    def _base(self, account: str) -> str:
        if self.endpoint_url is None:
            return f"https://{account}.blob.core.windows.net"
        if self.endpoint_url.rsplit("/", 1)[-1] == account:
            return self.endpoint_url
        return f"{self.endpoint_url}/{account}"

    def _query(self, path: str) -> str:
        return split_azure_path(path)[3] or self._sas or ""

    def _display(self, path: str) -> str:
        account, container, blob, _ = split_azure_path(path)
        return f"{self._base(account)}/{quote(container, safe='')}/{quote(blob, safe='/')}"

    def _target(self, path: str) -> str:
        query = self._query(path)
        return self._display(path) + (f"?{query}" if query else "")

    def _origin_headers(self, path: str) -> dict[str, str]:
        headers = {**self.headers, "x-ms-version": API_VERSION}
        if split_azure_path(path)[3]:  # the href's own SAS: no token besides it
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        return headers

    def _secrets(self, path: str) -> list[str]:
        query = self._query(path)
        return [*self.headers.values(), *([query] if query else [])]

    def _refusal(
        self, resp: aiohttp.ClientResponse, path: str, what: str, body: bytes
    ) -> Exception:
        shown, query = self._display(path), self._query(path)
        code = resp.headers.get("x-ms-error-code") or error_code(body)
        signed = "sig=" in query or "Authorization" in self.headers
        status = f"HTTP {resp.status}" + (f" {code}" if code else "")
        if resp.status in (404, 410):
            private = (
                ""
                if signed
                else (
                    "; a private container answers anonymous reads with 404 too: pass "
                    "storage_options={'sas_token': ...} or an href with its SAS"
                )
            )
            return ObjectNotFoundError(
                f"{shown} does not exist ({status}); check the URL or path, and that the "
                f"collection was built from the same location{private}"
            )
        if resp.status not in (401, 403) and code != "PublicAccessNotPermitted":  # a 409
            return answer_error(resp, shown, what, detail=code)  # e.g. 409 BlobArchived
        expiry = _expiry(query)
        if expiry is not None and expiry <= datetime.now(UTC):
            hint = (
                f"the SAS token expired at {expiry.isoformat()}; get a new one (Planetary "
                "Computer tokens last about an hour)"
            )
        elif not signed:
            hint = (
                "the container is not public: pass storage_options={'sas_token': ...} "
                "(or an href with its SAS), or a bearer_token"
            )
        else:
            hint = (
                "check that the SAS token or bearer token is for this account and container, "
                "is valid now (st/se) and allows reading (sp=r)"
            )
        return PermissionDeniedError(f"access to {shown} was refused ({status}); {hint}")
