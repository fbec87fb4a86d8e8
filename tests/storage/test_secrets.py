"""No credential in any message, note, chained exception, warning or log record (at DEBUG).

One test drives failing and succeeding reads with every kind of credential the
stores take: signed query strings, ``user:password@`` URLs, custom auth headers
(``storage_options["headers"]``), and S3 keys with a session token (explicit and
from the environment), against the loopback HTTP range server, the hostile
server and moto. Everything the run shows is gathered and searched for the
secrets; a control checks that the search would find one (botocore's own signer
logs the session token at DEBUG).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import xarray as xr

import xarray_rasteret as xrr
from cogs import with_datetimes, write_tiff
from hostile_servers import HostileServer
from xarray_rasteret.errors import RasteretError
from xarray_rasteret.storage import HTTPStore, S3Store

SIG, CRED, TOKEN = "SIGe3b0c44298fc1c149afb", "CREDAKIAQUERY7EXAMPLE", "TOKqwertyuiop1234"
PASSWORD, API_KEY, BEARER, COOKIE = "PWDhunter2xyz", "APIKEYzxcvbnm9", "BEARERasdfgh", "COOKIEpoiu"
S3_KEY, S3_SECRET, S3_TOKEN = "AKIDLEAKCHECK0001", "S3SECRETwJalrXUtnFEMI", "S3TOKENFwoGZXIvYXdz"
SECRETS = [SIG, CRED, TOKEN, PASSWORD, API_KEY, BEARER, COOKIE, S3_SECRET, S3_TOKEN]
HEADERS = {"X-Api-Key": API_KEY, "Authorization": f"Bearer {BEARER}", "Cookie": f"s={COOKIE}"}
QUERY = f"X-Amz-Signature={SIG}&X-Amz-Credential={CRED}&token={TOKEN}"
LOGGERS = ("", "aiohttp", "botocore", "aiobotocore", "asyncio", "urllib3", "xarray_rasteret")
FAST = {"timeout": 0.5, "max_attempts": 2, "backoff": 0.001, "max_backoff": 0.01}


def _error_texts(error: BaseException) -> list[str]:
    """Message, repr, notes and traceback of ``error`` and of every exception chained to it."""
    texts, seen = ["".join(traceback.format_exception(error))], set()
    stack: list[BaseException | None] = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        texts += [str(e), repr(e), *getattr(e, "__notes__", [])]
        stack += [e.__cause__, e.__context__]  # suppressed contexts too
    return texts


def _record_texts(records: list[logging.LogRecord]) -> list[str]:
    form = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = []
    for r in records:
        texts += [form.format(r), str(r.msg), repr(r.args), r.exc_text or ""]
    return texts


def _leaks(texts: list[str]) -> list[str]:
    return [t[:300] for t in texts for s in SECRETS if s in t]


def _capture(caplog: pytest.LogCaptureFixture) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)


def _group(href: str) -> tuple[str, ...]:
    return tuple(href.rsplit("/", 1)[-1].split("?")[0].removesuffix(".tif").split("_"))


def test_control_botocores_signer_would_be_caught(caplog: pytest.LogCaptureFixture) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    _capture(caplog)
    request = AWSRequest(method="GET", url="http://127.0.0.1:1/b/k", headers={"Range": "bytes=0-1"})
    S3SigV4Auth(Credentials(S3_KEY, S3_SECRET, S3_TOKEN), "s3", "us-east-1").add_auth(request)
    assert S3_TOKEN in " ".join(_leaks(_record_texts(caplog.records)))


# Long on purpose: one capture window over every kind of credential and failure,
# so that the search covers all they print together.
@pytest.mark.slow
def test_no_secret_in_any_message_warning_or_log(
    http_server: Any,
    s3_server: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = Path(http_server.root)
    write_tiff(root / "r0_B04.tif", dtype="uint16", compress="DEFLATE", seed=1)
    (root / "plain_B04.tif").write_bytes(b"this is not a TIFF at all" * 100)
    data = (root / "r0_B04.tif").read_bytes()
    s3_server.upload("r0_B04.tif", data)
    s3_server.gate.secrets[S3_KEY] = S3_SECRET  # the gate checks our signatures with it
    s3_opts = {"endpoint_url": s3_server.endpoint_url, "region_name": "us-east-1",
               "key": S3_KEY, "secret": S3_SECRET, "token": S3_TOKEN, **FAST}
    signed = http_server.url("r0_B04.tif") + "?" + QUERY
    userinfo = signed.replace("http://", f"http://reader:{PASSWORD}@")
    missing = http_server.url("nope_B04.tif") + "?" + QUERY
    http_opts = {"headers": HEADERS, **FAST}
    errors: list[BaseException] = []
    outcomes: list[str] = []

    def attempt(name: str, action: Callable[[], Any], fails: bool) -> Any:
        try:
            result = action()
        except Exception as e:  # every failure must be one of ours
            assert fails, f"{name} failed: {e!r}"
            assert isinstance(e, RasteretError), f"{name}: {type(e).__name__}: {e}"
            errors.append(e)
            outcomes.append(f"{name}: {type(e).__name__}")
            return None
        assert not fails, f"{name} succeeded"
        outcomes.append(f"{name}: ok")
        return result

    def read(store: Any, path: str, start: int = 0, end: int = 4096) -> bytes:
        got: bytes = asyncio.run(store.get_range_async(path, start=start, end=end))
        return got

    def load(col: Any, opts: dict[str, Any]) -> np.ndarray:
        dated = xrr.Collection(with_datetimes(col.table, dict.fromkeys(col.ids, "2024-01-01")))
        values: np.ndarray = xr.open_dataset(
            dated, engine="rasteret", storage_options=opts, cache=False
        ).B04.values
        return values

    _capture(caplog)
    with (
        warnings.catch_warnings(record=True) as caught,
        HostileServer() as elsewhere,
        HostileServer(elsewhere.origin) as hostile,
    ):
        warnings.simplefilter("always")
        # -- HTTP: signed URL, user info, custom headers; successes ---------------------
        col = attempt("build signed", lambda: xrr.build([signed], group_by=_group), False)
        pixels = attempt("load signed", lambda: load(col, {}), False)
        with rasterio.open(root / "r0_B04.tif") as src:
            np.testing.assert_array_equal(pixels[0], src.read(1))
        store = HTTPStore(headers=HEADERS, **FAST)
        assert attempt("read userinfo", lambda: read(HTTPStore(**FAST), userinfo), False) == data[
            :4096
        ]
        assert attempt("read headers", lambda: read(store, signed), False) == data[:4096]
        attempt("redirect elsewhere", lambda: read(store, hostile.url("redirect_other") + "&"
                                                   + QUERY), False)
        # -- HTTP failures ------------------------------------------------------------------
        attempt("build missing", lambda: xrr.build([missing], group_by=_group), True)
        attempt("build not a TIFF", lambda: xrr.build(
            [http_server.url("plain_B04.tif") + "?" + QUERY], group_by=_group), True)
        attempt("build userinfo missing", lambda: xrr.build(
            [missing.replace("http://", f"http://reader:{PASSWORD}@")], group_by=_group), True)
        attempt("read userinfo missing", lambda: read(HTTPStore(**FAST), missing.replace(
            "http://", f"http://reader:{PASSWORD}@")), True)
        for mode in ("redirect_loop", "garbage_status", "endless_206", "stall", "wrong_range",
                     "ignore_range", "huge_header", "redirect_bad_scheme"):
            attempt(mode, lambda m=mode: read(store, hostile.url(m) + "&" + QUERY, 20 << 20,
                                              (20 << 20) + 10), True)
        attempt("refused", lambda: read(store, f"http://reader:{PASSWORD}@127.0.0.1:9/x?"
                                        + QUERY), True)
        http_server.set_faults(p_503=1.0)
        attempt("503s", lambda: read(store, signed), True)
        attempt("load 503s", lambda: load(col, http_opts), True)
        http_server.set_faults(p_truncate=1.0)
        attempt("truncated", lambda: read(store, signed), True)
        http_server.set_faults(forbidden={"r0_B04.tif"})
        attempt("forbidden", lambda: read(store, signed), True)
        http_server.reset()
        (root / "r0_B04.tif").write_bytes(data[:-10])
        attempt("changed", lambda: load(col, http_opts), True)
        (root / "r0_B04.tif").write_bytes(data)
        # -- S3 with a session token: explicit, then from the environment ------------------
        s3, path = S3Store(**{k: v for k, v in s3_opts.items() if k != "endpoint_url"},
                           endpoint_url=s3_server.endpoint_url), f"{s3_server.bucket}/r0_B04.tif"
        assert attempt("s3 read", lambda: read(s3, path), False) == data[:4096]
        s3_col = attempt("s3 build", lambda: xrr.build(
            [f"s3://{path}"], group_by=_group, storage_options=s3_opts), False)
        np.testing.assert_array_equal(attempt("s3 load", lambda: load(s3_col, s3_opts), False),
                                      pixels)
        attempt("s3 missing", lambda: read(s3, f"{s3_server.bucket}/nope.tif"), True)
        attempt("s3 build missing", lambda: xrr.build(
            [f"s3://{s3_server.bucket}/nope_B04.tif"], storage_options=s3_opts), True)
        s3_server.gate.fail_next(1, 403, "AccessDenied")
        attempt("s3 denied", lambda: read(s3, path), True)
        s3_server.gate.fail_next(2, 503, "SlowDown")
        attempt("s3 slow down", lambda: read(s3, path), True)
        s3_server.gate.cut_next(2)
        attempt("s3 cut", lambda: read(s3, path), True)
        s3_server.gate.stall_next(2, 0.8)
        attempt("s3 stalled", lambda: read(s3, path), True)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_SECRET)
        monkeypatch.setenv("AWS_SESSION_TOKEN", S3_TOKEN)
        chain = S3Store(endpoint_url=s3_server.endpoint_url, **FAST)
        assert attempt("s3 env chain", lambda: read(chain, path), False) == data[:4096]
        attempt("s3 env chain missing", lambda: read(chain, f"{s3_server.bucket}/no.tif"), True)
        attempt("s3 bad profile", lambda: read(S3Store(
            profile="nope", endpoint_url=s3_server.endpoint_url, **FAST), path), True)

    del s3_server.gate.secrets[S3_KEY]
    # The token went where it belongs, signed (the gate refuses a wrong signature)...
    assert any(h.get("x-amz-security-token") == S3_TOKEN for h in s3_server.gate.seen)
    # ... and the custom headers to the origin asked, never to another.
    assert elsewhere.seen and not _leaks([repr(elsewhere.seen)])
    texts = [t for e in errors for t in _error_texts(e)]
    texts += _record_texts(caplog.records)
    texts += [f"{w.category.__name__}: {w.message} {w.filename}" for w in caught]
    print(f"\n{len(errors)} errors, {len(caplog.records)} log records, {len(caught)} warnings")
    print("\n".join(outcomes))
    assert len(errors) >= 25 and sum(o.endswith(": ok") for o in outcomes) >= 9
    loggers = {r.name.split(".")[0] for r in caplog.records}
    assert {"xarray_rasteret", "aiobotocore"} <= loggers, loggers  # the capture sees them
    assert any("retrying" in r.getMessage() for r in caplog.records)
    assert not _leaks(texts), "\n".join(_leaks(texts))
