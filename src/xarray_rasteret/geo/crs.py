"""Parsed CRSs and transformers, made once per process.

Parsing a CRS from WKT takes about 0.15 ms and creating a
:class:`pyproj.Transformer` about 1.5 ms (in every thread that uses it, unless
it is made from a pipeline), while transforming a few hundred points takes
microseconds. A read that warps many AOIs or records asks for
the same few CRSs and transformers again and again, so both are cached here.
Both kinds of object are thread-safe (pyproj >= 3.1).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

__all__ = [
    "as_crs",
    "authority_or_name",
    "cache_key",
    "crs_label",
    "epsg_code",
    "parse_crs",
    "projection",
    "transformer",
    "unit_abbreviation",
]


@lru_cache(maxsize=256)
def _parse(value: str | int) -> CRS:
    return CRS.from_user_input(value)


def as_crs(value: Any) -> CRS:
    """``value`` as a :class:`pyproj.CRS` (parsed once per distinct string or code).

    Parameters
    ----------
    value : Any
        A :class:`pyproj.CRS`, a WKT or authority string, an EPSG code, any
        object with ``to_wkt()`` (rasterio's CRS), or anything else
        :meth:`pyproj.CRS.from_user_input` accepts.

    Returns
    -------
    pyproj.CRS
    """
    if isinstance(value, CRS):
        return value
    if isinstance(value, (str, int)):
        return _parse(value)
    if hasattr(value, "to_wkt"):
        return _parse(value.to_wkt())
    return CRS.from_user_input(value)


def parse_crs(value: Any, what: str, error: type[Exception] = ValueError) -> CRS:
    """Parse a CRS given by a user or by metadata; the error says what was given.

    Parameters
    ----------
    value : Any
        Anything :meth:`pyproj.CRS.from_user_input` accepts; a string holding
        PROJJSON is decoded first (and shown decoded in the error).
    what : str
        What ``value`` is, for the error message (``"geometry_crs"``).
    error : type of Exception, default ValueError
        The exception raised when ``value`` is not a CRS.

    Returns
    -------
    pyproj.CRS
        A CRS parsed for this call (not cached: user input is parsed once).

    Raises
    ------
    Exception
        ``error``, naming ``what`` and pyproj's reason.
    """
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as exc:
        raise error(f"{what} {value!r:.100} is not a CRS pyproj understands: {exc}") from None


def crs_label(crs: Any) -> str:
    """The usual human label of a CRS: ``"AUTH:CODE"`` when exact, else its definition.

    Parameters
    ----------
    crs : Any
        Anything :func:`as_crs` accepts.

    Returns
    -------
    str
        :meth:`pyproj.CRS.to_string`: the authority code pyproj matches with
        full confidence (``"EPSG:32633"``), else the CRS's source definition.
    """
    return str(as_crs(crs).to_string())


def unit_abbreviation(crs: Any) -> str:
    """The unit of ``crs``'s first axis, short: ``"m"``, ``"deg"`` or its name; ``""`` if unknown.

    Examples
    --------
    >>> unit_abbreviation("EPSG:32633"), unit_abbreviation("EPSG:4326")
    ('m', 'deg')
    """
    if crs is None:
        return ""
    try:
        unit = as_crs(crs).axis_info[0].unit_name
    except (CRSError, IndexError, ValueError):
        return ""
    return {"metre": "m", "degree": "deg"}.get(unit, unit)


def authority_or_name(crs: Any) -> str:
    """A short label of a CRS: its best ``"AUTH:CODE"`` match, else the CRS's name.

    Parameters
    ----------
    crs : Any
        Anything :func:`as_crs` accepts.

    Returns
    -------
    str
        The authority code :meth:`pyproj.CRS.to_authority` finds (70 %
        confidence), else :attr:`pyproj.CRS.name`; short even for a long WKT.
    """
    parsed = as_crs(crs)
    auth = parsed.to_authority()
    return ":".join(auth) if auth else str(parsed.name)


def epsg_code(crs: Any) -> int | None:
    """The EPSG code of a CRS, as :meth:`pyproj.CRS.to_epsg` matches it (None if none).

    Parameters
    ----------
    crs : Any
        Anything :func:`as_crs` accepts.

    Returns
    -------
    int or None
    """
    code = as_crs(crs).to_epsg()
    return None if code is None else int(code)


@lru_cache(maxsize=256)
def _canonical(value: str) -> str:
    """``"EPSG:<code>"`` for a CRS whose definition carries that identifier, else ``value``.

    Reading the identifier written in the definition (WKT ``ID[...]``) is exact
    and takes microseconds; no database lookup guesses a code for a CRS without one.
    """
    if value.startswith("EPSG:") and value[5:].isdigit():
        return value
    ident = _parse(value).to_json_dict().get("id")
    if isinstance(ident, dict) and ident.get("authority") == "EPSG":
        return f"EPSG:{ident['code']}"
    return value


def cache_key(crs: Any) -> Any:
    """A hashable stand-in for ``crs`` in caches: one key per CRS, however it is written.

    None stays None. A CRS that names its EPSG code (``"EPSG:32633"``, ``32633``,
    its WKT with ``ID["EPSG",32633]``, the :class:`pyproj.CRS` of either) becomes
    ``"EPSG:32633"``, so that a transformer made for one spelling serves the
    others; any other CRS is keyed by its definition string.
    """
    if crs is None:
        return None
    if isinstance(crs, int):
        return f"EPSG:{crs}"
    if isinstance(crs, str):
        return _canonical(crs)
    if isinstance(crs, CRS):
        return _canonical(crs.srs) if crs.srs else crs
    return _canonical(as_crs(crs).to_wkt())


_TO_DEGREES = "step proj=unitconvert xy_in=rad xy_out=deg"
_TO_RADIANS = "step proj=unitconvert xy_in=deg xy_out=rad"


def _steps(definition: str) -> list[str] | None:
    """The ``step ...`` parts of a PROJ pipeline definition (None if it is not one)."""
    if not definition.startswith("proj=pipeline "):
        return None
    return ["step " + part.strip() for part in definition[len("proj=pipeline "):].split("step ")
            if part.strip()]


def _through_base(src: CRS, dst: CRS) -> str | None:
    """PROJ's pipeline between CRSs on one geodetic CRS, without its search.

    Between projections of the same geodetic CRS (two UTM zones of WGS 84)
    there is one operation: undo the first projection, apply the second.
    ``Transformer.from_crs`` finds it by searching PROJ's database (2.5-8 ms
    per pair); each half, projected to geodetic and back, is found in ~0.3 ms.
    The halves' pipelines are joined with their unit conversions to and from
    degrees cancelled, which gives the very string ``from_crs`` gives (tested
    over UTM zones north and south, Web Mercator and NAD83 feet).

    A projection and its own geodetic CRS in the other axis order (UTM and
    ``OGC:CRS84``) are one half: with ``always_xy`` the axis order does not
    enter the pipeline, but only the base itself skips the search (0.3 ms
    instead of 1.5-5 ms).
    """
    if src.is_bound or dst.is_bound:
        return None
    if src.is_projected and dst.is_geographic and _is_base(src, dst):
        return Transformer.from_crs(src, src.geodetic_crs, always_xy=True).definition
    if src.is_geographic and dst.is_projected and _is_base(dst, src):
        return Transformer.from_crs(dst.geodetic_crs, dst, always_xy=True).definition
    if not (src.is_projected and dst.is_projected):
        return None
    base = src.geodetic_crs
    if base is None or base != dst.geodetic_crs:
        return None
    inverse = _steps(Transformer.from_crs(src, base, always_xy=True).definition)
    forward = _steps(Transformer.from_crs(base, dst, always_xy=True).definition)
    if not inverse or not forward:
        return None
    if inverse[-1] == _TO_DEGREES and forward[0] == _TO_RADIANS:
        inverse, forward = inverse[:-1], forward[1:]
    return " ".join(["proj=pipeline", *inverse, *forward])


def _is_base(projected: CRS, geographic: CRS) -> bool:
    """Whether ``geographic`` is ``projected``'s geodetic CRS, in either axis order."""
    base = projected.geodetic_crs
    return base is not None and base.equals(geographic, ignore_axis_order=True)


@lru_cache(maxsize=64)
def _transformer(src: Any, dst: Any) -> Transformer:
    src_crs, dst_crs = as_crs(src), as_crs(dst)
    joined = _through_base(src_crs, dst_crs)
    if joined is not None:
        return Transformer.from_pipeline(joined)
    chosen = Transformer.from_crs(src_crs, dst_crs, always_xy=True)
    if chosen.name == "unknown":
        # Several candidate operations, picked point by point: keep them all.
        return chosen
    # One operation: the same transformer rebuilt from its PROJ pipeline. A
    # pyproj Transformer rebuilds itself in each thread that uses it; from a
    # pipeline that takes 0.1 ms, from two CRSs 1.5-4 ms (a database search).
    return Transformer.from_pipeline(chosen.definition)


@lru_cache(maxsize=64)
def _equal(src: Any, dst: Any) -> bool:
    return bool(as_crs(src) == as_crs(dst))


def transformer(src: Any, dst: Any) -> Transformer:
    """The ``always_xy`` transformer from ``src`` to ``dst``, created once per pair.

    Parameters
    ----------
    src, dst : Any
        Source and target CRS (anything :func:`as_crs` accepts).

    Returns
    -------
    pyproj.Transformer
        A no-op transformer when the CRSs are equal.
    """
    return _transformer(cache_key(src), cache_key(dst))


def projection(src: Any, dst: Any) -> Transformer | None:
    """:func:`transformer`, or None when the CRSs are equal (nothing to transform)."""
    src, dst = cache_key(src), cache_key(dst)
    return None if _equal(src, dst) else _transformer(src, dst)
