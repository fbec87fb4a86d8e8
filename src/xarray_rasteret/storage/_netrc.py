"""Basic-auth logins from a ``.netrc`` file, handed out per host as GDAL and requests do.

NASA Earthdata (and other single-sign-on data hosts) answer a data URL with a
redirect to a login host (``urs.earthdata.nasa.gov``), which wants the user's
name and password, then redirect back with a cookie and on to a signed S3 URL.
The usual way to give those credentials is a ``machine urs.earthdata.nasa.gov
login NAME password SECRET`` entry in ``~/.netrc`` (or the file ``$NETRC`` names).

A login goes only to the host its entry names, on each hop of a redirect chain
(never to the data host or the signed URL unless they are that host), and only
over HTTPS, or plain HTTP to a loopback host; a ``default`` entry is never used
(it would send the password to every host). Passwords never appear in messages.
"""

from __future__ import annotations

import base64
import ipaddress
import netrc as _netrc
import os
from dataclasses import dataclass, field
from pathlib import Path

from yarl import URL

__all__ = ["NetrcLogins", "NetrcSetting", "load_logins"]

NetrcSetting = bool | str | os.PathLike[str]
"""``True`` (``$NETRC``, else ``~/.netrc``, if it exists), ``False`` (none), or a file's path."""


def _default_path() -> Path | None:
    given = os.environ.get("NETRC")
    if given:
        return Path(given).expanduser()
    home = Path.home()
    for name in (".netrc", "_netrc"):  # _netrc: the Windows spelling curl and requests read
        if (home / name).is_file():
            return home / name
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class NetrcLogins:
    """The ``Authorization`` header values of a netrc file, by lower-case host name."""

    path: str
    """The file read (shown in messages; it holds no secret itself)."""
    _headers: dict[str, str] = field(default_factory=dict, repr=False)

    def authorization(self, url: URL) -> str | None:
        """The ``Basic`` header value to send to ``url``'s host, or None.

        None unless the file names that host exactly, and the URL is HTTPS or
        plain HTTP to a loopback host (a password is not sent in clear over a
        network).
        """
        host = (url.host or "").lower()
        if url.scheme != "https" and not (url.scheme == "http" and _loopback(host)):
            return None
        return self._headers.get(host)

    def secrets(self) -> list[str]:
        """The header values, to keep out of messages."""
        return list(self._headers.values())


_parsed: dict[str, tuple[tuple[int, int], NetrcLogins]] = {}  # path: ((mtime, size), logins)


def load_logins(setting: NetrcSetting) -> NetrcLogins | None:
    """Read the netrc file ``setting`` names (see :data:`NetrcSetting`).

    Asked before every request (``$NETRC`` may change, the file may be
    edited); a file is parsed again only when its size or mtime changed.

    Raises
    ------
    FileNotFoundError
        ``setting`` is a path (or ``$NETRC`` names one) that does not exist.
    ValueError
        The file does not parse (the message names the file and the line, never a password).
    """
    if setting is False:
        return None
    path = _default_path() if setting is True else Path(os.fspath(setting)).expanduser()
    if path is None:
        return None
    named_by = "storage_options['netrc']" if setting is not True else "$NETRC"
    if not path.is_file():
        if setting is True and not os.environ.get("NETRC"):
            return None
        raise FileNotFoundError(
            f"the netrc file {str(path)!r} ({named_by}) does not exist; create it with a "
            "'machine HOST login NAME password ...' line, or pass storage_options={'netrc': False}"
        )
    stat = path.stat()
    stamp = (stat.st_mtime_ns, stat.st_size)
    known = _parsed.get(str(path))
    if known is not None and known[0] == stamp:
        return known[1]
    try:
        parsed = _netrc.netrc(str(path))
    except _netrc.NetrcParseError as e:
        # Not e.msg: it quotes the offending token, which may be a password.
        error = ValueError(
            f"the netrc file {str(path)!r} does not parse (near line {e.lineno}); fix it, "
            "or pass storage_options={'netrc': False} to read without it"
        )
    else:
        headers = {}
        for host, (login, _, password) in parsed.hosts.items():
            if host == "default" or not login:
                continue
            pair = f"{login}:{password or ''}".encode()
            headers[host.lower()] = "Basic " + base64.b64encode(pair).decode("ascii")
        logins = NetrcLogins(str(path), headers)
        _parsed[str(path)] = (stamp, logins)
        return logins
    raise error
