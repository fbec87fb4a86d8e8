"""Where an S3 object lives on the wire: the URL of ``s3://bucket/key``, as botocore builds it.

AWS buckets are addressed virtual-hosted style
(``https://bucket.s3.region.amazonaws.com/key``) when the bucket name can be a
DNS label, path style (``https://s3.region.amazonaws.com/bucket/key``)
otherwise, for instance when it has dots (the wildcard certificate would not
match). Other services (``endpoint_url``: MinIO, Ceph, R2, moto) are addressed
path style unless asked otherwise, as most of them expect. Keys are
percent-encoded as botocore encodes them (``/`` and ``~`` kept).
"""

from __future__ import annotations

import os
import re
from typing import Literal
from urllib.parse import quote, urlsplit

__all__ = ["AddressingStyle", "configured_endpoint", "object_url"]

AddressingStyle = Literal["auto", "virtual", "path"]

_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _aws_domain(region: str) -> str:
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def object_url(
    bucket: str,
    key: str,
    *,
    region: str,
    endpoint_url: str | None = None,
    addressing_style: AddressingStyle = "auto",
) -> str:
    """The URL of ``s3://bucket/key``, percent-encoded.

    Parameters
    ----------
    bucket, key
        The object.
    region
        The bucket's region (names the AWS endpoint; unused with ``endpoint_url``).
    endpoint_url
        An S3-compatible service's base URL; None for AWS.
    addressing_style
        ``"auto"`` (virtual-hosted on AWS where the bucket name allows it, path
        style elsewhere), ``"virtual"`` or ``"path"``.

    Examples
    --------
    >>> object_url("sentinel-cogs", "a b/c.tif", region="us-west-2")
    'https://sentinel-cogs.s3.us-west-2.amazonaws.com/a%20b/c.tif'
    >>> object_url("bkt", "k.tif", region="us-east-1", endpoint_url="http://127.0.0.1:9000")
    'http://127.0.0.1:9000/bkt/k.tif'
    """
    if bucket.startswith("arn:"):
        raise ValueError(
            f"S3 access point and Outposts ARNs are not supported as buckets ({bucket!r}); "
            "use the access point's alias as the bucket name"
        )
    path = quote(key, safe="/~")
    if endpoint_url is None:
        scheme, host, prefix = "https", f"s3.{region}.{_aws_domain(region)}", ""
        virtual = addressing_style != "path" and _DNS_BUCKET.match(bucket) is not None
    else:
        parts = urlsplit(endpoint_url)
        scheme, host, prefix = parts.scheme or "https", parts.netloc, parts.path.rstrip("/")
        virtual = addressing_style == "virtual"
    if virtual:
        return f"{scheme}://{bucket}.{host}{prefix}/{path}"
    return f"{scheme}://{host}{prefix}/{quote(bucket, safe='')}/{path}"


def configured_endpoint() -> str | None:
    """The S3 endpoint set in the environment (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``).

    botocore honours the same variables, unless
    ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true.
    """
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
