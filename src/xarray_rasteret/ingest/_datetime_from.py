"""Record times from file names: ``build(paths, datetime_from=...)`` and ``--datetime-from``.

Files on disk rarely carry their acquisition time in a tag, but their names
nearly always do (``S2A_33TWN_20240503_B04.tif``, ``LC09_..._2024123_...``).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Callable

__all__ = ["datetime_parser"]

# strftime directives a file name spells with digits, and how many.
_DIRECTIVES = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{2}",
    "d": r"\d{2}",
    "H": r"\d{2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
    "j": r"\d{3}",
    "f": r"\d{1,6}",
}
_EXAMPLE = r"r'_(?P<date>\d{8})_' or '%Y%m%d'"


def _name(href: str) -> str:
    return os.path.basename(href.split("?", 1)[0].replace("\\", "/").rstrip("/"))


def _format_regex(fmt: str) -> re.Pattern[str]:
    """A regex finding the text ``fmt`` (a strftime format of digits) describes."""
    parts = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%":
            parts.append(re.escape(ch))
            i += 1
            continue
        code = fmt[i + 1 : i + 2]
        if code == "%":
            parts.append("%")
        elif code in _DIRECTIVES:
            parts.append(_DIRECTIVES[code])
        else:
            raise ValueError(
                f"datetime_from={fmt!r}: %{code} is not supported in file names; use the "
                f"digit directives %{' %'.join(_DIRECTIVES)}, or a regex with a (?P<date>...) "
                "or (?P<datetime>...) group"
            )
        i += 2
    return re.compile("".join(parts))


def _utc(value: _dt.datetime) -> _dt.datetime:
    return value.replace(tzinfo=_dt.UTC) if value.tzinfo is None else value.astimezone(_dt.UTC)


def _from_group(text: str, group: str, name: str, pattern: str) -> _dt.datetime:
    try:
        if group == "date":
            digits = re.sub(r"[-_./]", "", text)
            fmt = {8: "%Y%m%d", 7: "%Y%j"}.get(len(digits))
            if fmt is None:
                raise ValueError("not 8 digits (YYYYMMDD) or 7 (YYYYDDD)")
            return _dt.datetime.strptime(digits, fmt).replace(tzinfo=_dt.UTC)
        import pandas as pd

        stamp = pd.Timestamp(text)
        if stamp is pd.NaT:
            raise ValueError("not a time")
        return _utc(stamp.to_pydatetime())
    except ValueError as e:
        raise ValueError(
            f"file {name!r}: the ({group}) group of datetime_from={pattern!r} matched "
            f"{text!r}, which is not a {'date' if group == 'date' else 'date and time'} ({e})"
        ) from None


def datetime_parser(spec: str | re.Pattern[str]) -> Callable[[str], _dt.datetime]:
    """A function giving the UTC time a file's name spells, from ``spec``.

    Parameters
    ----------
    spec
        A regular expression with a named group ``date`` (``YYYYMMDD``, separators
        allowed, or ``YYYYDDD``) or ``datetime`` (any form pandas parses, e.g.
        ``20240503T101559``), searched in the file name; or a strftime format of
        digit directives (``%Y%m%d``, ``%Y%m%dT%H%M%S``, ``%Y%j``) whose first
        occurrence in the name is the time. Times without a zone are UTC.

    Returns
    -------
    callable
        ``href -> datetime``, raising ``ValueError`` naming the file and ``spec``
        when the name does not match.
    """
    pattern = spec.pattern if isinstance(spec, re.Pattern) else str(spec)
    regex: re.Pattern[str]
    fmt: str | None = None
    if isinstance(spec, re.Pattern) or "(?P<" in pattern:
        try:
            regex = spec if isinstance(spec, re.Pattern) else re.compile(pattern)
        except re.error as e:
            raise ValueError(
                f"datetime_from={pattern!r} is not a regular expression: {e}"
            ) from None
        groups = [g for g in ("datetime", "date") if g in regex.groupindex]
        if not groups:
            raise ValueError(
                f"datetime_from={pattern!r} has no (?P<date>...) or (?P<datetime>...) group; "
                f"e.g. {_EXAMPLE}"
            )
        group = groups[0]
    elif "%" in pattern:
        fmt, group = pattern, ""
        regex = _format_regex(pattern)
    else:
        raise ValueError(
            f"datetime_from={pattern!r} is neither a regex with a (?P<date>...) or "
            f"(?P<datetime>...) group nor a strftime format; e.g. {_EXAMPLE}"
        )

    def parse(href: str) -> _dt.datetime:
        name = _name(href)
        found = regex.search(name)
        if found is None:
            raise ValueError(
                f"file {name!r} does not match datetime_from={pattern!r}; every file name "
                "must spell its time (or build without datetime_from)"
            )
        if fmt is None:
            return _from_group(found[group], group, name, pattern)
        try:
            return _utc(_dt.datetime.strptime(found[0], fmt))
        except ValueError as e:
            raise ValueError(
                f"file {name!r}: {found[0]!r} found by datetime_from={pattern!r} is not a "
                f"time ({e})"
            ) from None

    return parse
