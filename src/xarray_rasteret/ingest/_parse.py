"""Many COG headers read at once, and what a build does when some cannot be read.

``on_error="raise"`` (the default) fails the build at the first header that
cannot be read, naming the file; ``"skip"`` reads every header, leaves out the
records with an asset that failed, warns naming them, and lists them on the
collection (:attr:`Collection.skipped`). If nothing can be read, the build
raises the first failure either way: an empty collection is never a result.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from tqdm import tqdm

from .._arguments import checked_max_concurrent
from .._types import RasterSource
from ..errors import ObjectNotFoundError, RasteretError, RasteretWarning
from ..storage import redact_url
from . import _stac

__all__ = [
    "ON_ERROR",
    "checked_on_error",
    "drop_failed",
    "origins",
    "parse_all",
    "raise_if_nothing",
    "warn_skipped",
]

ON_ERROR = ("raise", "skip")
# What counts as "this file's header cannot be read": missing, refused, corrupt or
# unsupported files and transport failures after the retries. Anything else (a bug,
# a cancelled build) still raises under "skip".
_SKIPPABLE = (RasteretError, OSError, ValueError)
_LISTED = 10  # failures named in the warning; the rest are counted (all are on .skipped)


def checked_on_error(on_error: object) -> str:
    """``on_error`` if it is one of :data:`ON_ERROR`, else a ValueError saying what is."""
    if on_error not in ON_ERROR:
        raise ValueError(
            f"on_error must be 'raise' (fail the build at the first file whose header "
            f"cannot be read) or 'skip' (leave those records out and list them), "
            f"not {on_error!r}"
        )
    return str(on_error)


async def parse_all(
    hrefs: Sequence[str],
    *,
    origins: Mapping[str, str],
    max_concurrent: int,
    progress: bool,
    storage_options: dict[str, Any] | None,
    backend: Any,
    on_error: str = "raise",
) -> tuple[dict[str, list[RasterSource]], dict[str, BaseException]]:
    """Read the headers of ``hrefs`` concurrently: (sources by href, failures by href).

    With ``on_error="raise"`` the failures are empty: the first one raises.
    """
    from ._header import read_sources_async

    sem = asyncio.Semaphore(checked_max_concurrent(max_concurrent))
    # No bar object at all without progress: tqdm's first instance creates a
    # multiprocessing lock, which costs before the first request.
    bar = tqdm(total=len(hrefs), desc="COG headers", unit="file") if progress else None
    failed: dict[str, BaseException] = {}

    async def one(href: str) -> tuple[str, list[RasterSource] | None]:
        async with sem:
            try:
                return href, await read_sources_async(
                    href, storage_options=storage_options, backend=backend
                )
            except ObjectNotFoundError as e:
                error: BaseException = _missing(href, origins.get(href), e)
            except Exception as e:
                shown = redact_url(href)  # no signature or token in a note
                if shown not in str(e):
                    e.add_note(f"while reading the TIFF header of {shown}")
                error = e
            finally:
                if bar is not None:
                    bar.update(1)
            if on_error == "skip" and isinstance(error, _SKIPPABLE):
                failed[href] = error
                return href, None
            raise error

    tasks = [asyncio.ensure_future(one(h)) for h in hrefs]
    out: dict[str, list[RasterSource]] = {}
    try:
        for fut in asyncio.as_completed(tasks):
            href, srcs = await fut
            if srcs is not None:
                out[href] = srcs
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return out, failed


def origins(records: Sequence[_stac.Record]) -> dict[str, str]:
    """Who names each href (record, band, and how a relative href was resolved)."""
    out: dict[str, str] = {}
    for rec in records:
        for band, ref in rec.assets.items():
            named = f"record {rec.id!r}" + (f" band {band!r}" if band else "")
            if ref.resolved_from:
                named += f": {ref.resolved_from}; pass base_href= to resolve it elsewhere"
            out.setdefault(ref.href, named)
    return out


def _missing(href: str, origin: str | None, error: Exception) -> ObjectNotFoundError:
    """A missing file at build time: the source names a file that is not there."""
    status = " (HTTP 404)" if "HTTP 404" in str(error) else ""
    return ObjectNotFoundError(
        f"{redact_url(href)} is missing{status}: no file at that path or URL"
        + (f" ({origin})" if origin else "")
        + "; check the source"
    )


def _reason(error: BaseException) -> str:
    """One line: the error's type and message (messages carry no credentials)."""
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def drop_failed(
    records: Sequence[_stac.Record], failed: Mapping[str, BaseException]
) -> tuple[list[_stac.Record], list[tuple[str, str, str]]]:
    """The records all of whose assets were read, and (record id, href, reason) of the others.

    A record goes whole: a scene with one band missing would read as nodata in
    that band, which a user cannot tell from real nodata.
    """
    if not failed:
        return list(records), []
    kept: list[_stac.Record] = []
    skipped: list[tuple[str, str, str]] = []
    for rec in records:
        bad = [r.href for r in rec.assets.values() if r.href in failed]
        if not bad:
            kept.append(rec)
        for href in dict.fromkeys(bad):
            skipped.append((rec.id, redact_url(href), _reason(failed[href])))
    return kept, skipped


def raise_if_nothing(kept: int, failed: Mapping[str, BaseException]) -> None:
    """Under "skip", a build where no record survives raises the first failure."""
    if kept or not failed:
        return
    error = next(iter(failed.values()))
    error.add_note(
        f"on_error='skip' left out every record: none of the {len(failed)} files that "
        "failed could be read, so there is nothing to build"
    )
    raise error


def warn_skipped(skipped: Sequence[tuple[str, str, str]], total: int) -> None:
    """Warn naming the records ``on_error="skip"`` left out (the first few, then a count)."""
    if not skipped:
        return
    ids = list(dict.fromkeys(s[0] for s in skipped))
    lines = [f"  record {rid!r}: {href}: {why}" for rid, href, why in skipped[:_LISTED]]
    more = len(skipped) - _LISTED
    if more > 0:
        lines.append(f"  ... and {more} more (all in the collection's .skipped)")
    warnings.warn(
        f"build(on_error='skip') left out {len(ids)} of {total} records whose headers "
        "could not be read (listed in the collection's .skipped):\n" + "\n".join(lines),
        RasteretWarning,
        stacklevel=3,
    )
