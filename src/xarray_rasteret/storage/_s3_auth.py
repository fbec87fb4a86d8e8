"""Who reads from S3: credentials from aiobotocore's chain, requests signed with SigV4.

The S3 store sends its range requests itself, over aiohttp, instead of through
an aiobotocore client: a client decodes botocore's S3 models when it is made
(60-65 ms in a fresh process, 145-160 ms before the models were shared) and
runs its event hooks, serializers and parsers on every request. A ranged GET
needs none of that: a URL (``_s3_addressing``), a ``Range`` header and a
signature. The credentials still come from aiobotocore (explicit keys,
environment, profiles, SSO, container and instance roles, refreshed when they
expire) and the signature from botocore's own ``S3SigV4Auth``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.auth import SIGV4_TIMESTAMP, S3SigV4Auth
from botocore.awsrequest import AWSRequest

from ..errors import PermissionDeniedError
from ._retry import redact_url

__all__ = ["S3Signer", "StaticKeys", "default_region", "open_signer"]


class _QuietSigV4(S3SigV4Auth):
    """botocore's S3 SigV4 signer without its DEBUG records.

    ``SigV4Auth.add_auth`` logs the canonical request, which holds the value of
    every signed header, the ``x-amz-security-token`` (a session token) among
    them, and the signature. The same steps, in botocore's order, minus the logs.
    """

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = datetime.now(UTC).strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        signature = self.signature(self.string_to_sign(request, canonical), request)
        self._inject_signature_to_request(request, signature)


class S3Signer:
    """Signs requests for one event loop (refreshable credentials lock per loop).

    Parameters
    ----------
    credentials
        aiobotocore credentials, or None to send requests unsigned.
    missing
        True when the chain found no credentials: every request then fails
        with a :class:`~xarray_rasteret.errors.PermissionDeniedError` that says
        how to provide them.
    """

    def __init__(self, credentials: Any | None, *, missing: bool = False) -> None:
        self._credentials = credentials
        self._missing = missing

    async def headers(
        self, method: str, url: str, headers: Mapping[str, str], region: str
    ) -> dict[str, str]:
        """``headers`` plus the signature of ``method url`` for ``region``.

        Raises
        ------
        PermissionDeniedError
            No credentials were found (and the store is not anonymous).
        """
        if self._missing:
            raise PermissionDeniedError(
                f"no AWS credentials found to read {redact_url(url)}; pass anon=True for "
                "public buckets, or key/secret, profile or the AWS_* environment variables"
            )
        if self._credentials is None:
            return dict(headers)
        frozen = await self._credentials.get_frozen_credentials()
        request = AWSRequest(method=method, url=url, headers=dict(headers))
        _QuietSigV4(frozen, "s3", region).add_auth(request)
        return dict(request.headers.items())


@dataclass(frozen=True)
class StaticKeys:
    """Explicit credentials, in the shape botocore's signer reads.

    Not aiobotocore's ``AioCredentials``: importing it costs 60-170 ms (it
    pulls in botocore's client and docs modules), paid by the first read.
    """

    access_key: str
    secret_key: str
    token: str | None = None

    async def get_frozen_credentials(self) -> StaticKeys:
        """These keys (they never expire)."""
        return self

    def __repr__(self) -> str:
        return "StaticKeys(<hidden>)"


def _session(profile: str | None) -> Any:
    # Imported at first use: aiobotocore (and the botocore modules it pulls in)
    # costs tens of ms, paid only by S3 reads that need the credential chain.
    from aiobotocore.session import AioSession

    return AioSession(profile=profile)


async def open_signer(
    *, anon: bool, profile: str | None, key: str | None, secret: str | None, token: str | None
) -> S3Signer:
    """The signer of a store: unsigned, explicit keys, or aiobotocore's credential chain."""
    if anon:
        return S3Signer(None)
    if key and secret:  # S3Store checks that a token comes with both
        return S3Signer(StaticKeys(key, secret, token))
    credentials = await _session(profile).get_credentials()
    return S3Signer(credentials, missing=credentials is None)


def default_region(profile: str | None) -> str:
    """The region botocore would use: ``AWS_DEFAULT_REGION``, the profile's, else us-east-1."""
    if os.environ.get("AWS_DEFAULT_REGION"):  # botocore's first choice, without its import
        return os.environ["AWS_DEFAULT_REGION"]
    return str(_session(profile).get_config_variable("region") or "us-east-1")
