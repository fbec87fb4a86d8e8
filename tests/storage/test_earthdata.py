"""Earthdata-style HTTPS: a data host redirecting to a login host (netrc) and on to a signed bucket.

Three hosts: the data host at ``localhost``, the login host at ``127.0.0.2``
(as urs.earthdata.nasa.gov) and the bucket at ``127.0.0.1``. Each records what
it was sent, so the tests assert that the password went to the login host
only, the data host's cookie to the data host only, and nothing to the bucket.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from yarl import URL

from cloud_servers import EarthdataServers, assert_pixels_equal, write_scenes
from xarray_rasteret._sync import sync
from xarray_rasteret.errors import PermissionDeniedError
from xarray_rasteret.storage import object_info, resolve_store
from xarray_rasteret.storage._netrc import load_logins

PASSWORD, TOKEN, DEFAULT = "PWDurs0secret42", "EDLTOKENsecret77", "PWDdefault0never"


@pytest.fixture(scope="module")
def earthdata(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EarthdataServers, list[str]]]:
    root = tmp_path_factory.mktemp("earthdata")
    names = write_scenes(root / "cogs")
    with EarthdataServers(root, users={"alice": PASSWORD}, token=TOKEN) as servers:
        yield servers, names


@pytest.fixture
def netrc_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "netrc"
    path.write_text(f"machine 127.0.0.2 login alice password {PASSWORD}\n"
                    f"default login eve password {DEFAULT}\n")  # fmt: skip
    monkeypatch.setenv("NETRC", str(path))
    return path


def _local(servers: EarthdataServers, names: list[str]) -> list[Path]:
    return [Path(servers.bucket.root) / "cogs" / n for n in names]


def test_netrc_login_through_the_redirect_chain(
    earthdata: tuple[EarthdataServers, list[str]], netrc_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    servers, names = earthdata
    servers.reset()
    caplog.set_level(logging.DEBUG)
    hrefs = [servers.data.url(f"cogs/{n}") for n in names]
    assert_pixels_equal(hrefs, _local(servers, names), {"timeout": 10})
    basic = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    login, data, bucket = servers.login.seen, servers.data.seen, servers.bucket.seen
    print(f"{len(data)} data, {len(login)} login, {len(bucket)} bucket requests")
    assert login and {s.header("Authorization") for s in login} == {basic}
    # The session cookie spares later requests the login (here: the first, concurrent
    # requests of the two files each logged in; then no more).
    assert len(login) <= len(names)
    store, path = resolve_store(hrefs[0], storage_options={"timeout": 10})
    assert (
        sync(store.get_range_async(path, start=0, end=8))
        == _local(servers, names)[0].read_bytes()[:8]
    )
    assert len(servers.login.seen) == len(login)
    assert all(s.header("Cookie") is None for s in login)
    assert all(s.header("Authorization") is None for s in data)
    assert any("datasession=" in (s.header("Cookie") or "") for s in data)
    assert all(s.header("Authorization") is None and s.header("Cookie") is None for s in bucket)
    assert all("X-Amz-Signature=" in s.path for s in bucket)
    for secret in (PASSWORD, DEFAULT, basic.split()[1]):
        assert secret not in caplog.text


def test_without_a_login_the_refusal_names_the_url_and_the_fix(
    earthdata: tuple[EarthdataServers, list[str]], netrc_file: Path
) -> None:
    servers, names = earthdata
    servers.reset()
    url = servers.data.url(f"cogs/{names[0]}")
    store, path = resolve_store(url, storage_options={"netrc": False, "max_attempts": 1})
    with pytest.raises(PermissionDeniedError, match=rf"access to {url} was refused \(HTTP 401\); "
                       r"check the credentials: .*'bearer_token', or a netrc entry for the login "
                       r"host") as caught:  # fmt: skip
        sync(object_info(store, path))
    assert PASSWORD not in str(caught.value)
    assert servers.login.seen and all(s.header("Authorization") is None for s in servers.login.seen)
    # A netrc entry for another host is not sent to this one (nor is the default entry).
    other = netrc_file.parent / "other-netrc"
    other.write_text(f"machine urs.example.org login alice password {PASSWORD}\n")
    store, path = resolve_store(url, storage_options={"netrc": str(other), "max_attempts": 1})
    with pytest.raises(PermissionDeniedError, match="HTTP 401"):
        sync(store.get_range_async(path, start=0, end=10))
    assert all(s.header("Authorization") is None for s in servers.login.seen)


def test_bearer_token_goes_to_the_data_host_only(
    earthdata: tuple[EarthdataServers, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    servers, names = earthdata
    servers.reset()
    monkeypatch.delenv("NETRC", raising=False)
    hrefs = [servers.data.url(f"cogs/{n}") for n in names]
    assert_pixels_equal(hrefs, _local(servers, names), {"bearer_token": TOKEN, "netrc": False})
    assert {s.header("Authorization") for s in servers.data.seen} == {f"Bearer {TOKEN}"}
    assert not servers.login.seen
    assert servers.bucket.seen and all(
        s.header("Authorization") is None for s in servers.bucket.seen
    )


def test_netrc_rules_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "netrc"
    path.write_text(f"machine URS.Example.org login bob password {PASSWORD}\n"
                    f"default login eve password {DEFAULT}\n")  # fmt: skip
    logins = load_logins(str(path))
    assert logins is not None
    basic = "Basic " + base64.b64encode(f"bob:{PASSWORD}".encode()).decode()
    assert logins.authorization(URL("https://urs.example.org/oauth")) == basic
    assert logins.authorization(URL("http://urs.example.org/oauth")) is None  # not in clear
    assert logins.authorization(URL("https://data.example.org/a.tif")) is None  # not default
    assert PASSWORD not in repr(logins)
    monkeypatch.setenv("NETRC", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=r"the netrc file '.*missing' \(\$NETRC\) does "
                       r"not exist; .* storage_options=\{'netrc': False\}"):  # fmt: skip
        load_logins(True)
    monkeypatch.delenv("NETRC")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_logins(True) is None  # no ~/.netrc: nothing to send
    with pytest.raises(FileNotFoundError, match=r"\(storage_options\['netrc'\]\) does not exist"):
        load_logins(str(tmp_path / "nope"))
    broken = tmp_path / "broken"
    broken.write_text(f"machine h login u password {PASSWORD} bogus{PASSWORD}\n")
    with pytest.raises(ValueError, match=r"does not parse \(near line \d+\)") as caught:
        load_logins(str(broken))
    assert PASSWORD not in str(caught.value)
    with pytest.raises(ValueError, match=r"'netrc'\] must be True, False or the path"):
        resolve_store("https://example.org/a.tif", storage_options={"netrc": 1})
