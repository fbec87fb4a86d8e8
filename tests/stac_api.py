"""A small STAC API on 127.0.0.1 for tests: landing page, conformance, collections, search.

Nothing here imports pytest::

    with StacAPIServer(items) as api:
        xrr.build(stac_api=api.url(), collections=["s2"], bbox=(...), max_items=3)
        api.requests  # [(method, path, token), ...] as the server saw them

``/search`` answers GET (query string) and POST (JSON body) with ``collections``,
``ids``, ``bbox``, ``datetime`` (instants, intervals, ``..`` open ends), ``query``
(``eq``/``neq``/``lt``/``lte``/``gt``/``gte``/``in`` on properties), ``filter``
(CQL2-JSON: ``and``/``or``/``not``, ``=``/``<>``/``<``/``<=``/``>``/``>=``,
``s_intersects``) and ``limit``, and pages with ``next`` links as Earth Search
does: for GET, the same query plus ``token=``; for POST, a POST link whose body is
the search plus ``"next": token``. Items are served as given (their ``self`` links
included); an item without one gets ``{api}/collections/{c}/items/{id}``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import shapely
from shapely.geometry import shape

__all__ = ["StacAPIServer"]

CONFORMS_TO = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0-rc.2/item-search#query",
    "https://api.stacspec.org/v1.0.0-rc.2/item-search#filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
]
_MAX_LIMIT = 1000


def _time(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _interval(spec: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    if "/" not in spec:
        t = _time(spec)
        return t, t
    a, b = spec.split("/", 1)
    return (None if a in ("", "..") else _time(a)), (None if b in ("", "..") else _time(b))


def _item_span(item: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    p = item.get("properties") or {}
    if p.get("datetime"):
        t = _time(p["datetime"])
        return t, t
    return _time(p["start_datetime"]), _time(p["end_datetime"])


def _compare(op: str, value: Any, other: Any) -> bool:
    if value is None:
        return False
    return {
        "eq": lambda: value == other,
        "neq": lambda: value != other,
        "lt": lambda: value < other,
        "lte": lambda: value <= other,
        "gt": lambda: value > other,
        "gte": lambda: value >= other,
        "in": lambda: value in other,
    }[op]()


_CQL_OPS = {"=": "eq", "<>": "neq", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "in": "in"}


def _cql(expr: Any, item: Mapping[str, Any]) -> Any:
    """Evaluate a CQL2-JSON expression on ``item`` (ValueError for what it does not know)."""
    if not isinstance(expr, Mapping):
        return expr
    if "property" in expr:
        name = expr["property"]
        if name == "id":
            return item.get("id")
        if name == "collection":
            return item.get("collection")
        return (item.get("properties") or {}).get(name)
    if "timestamp" in expr:
        return _time(expr["timestamp"])
    if expr.get("type") in ("Polygon", "MultiPolygon", "Point"):
        return shape(expr)
    op, args = expr.get("op"), expr.get("args", [])
    if op == "and":
        return all(_cql(a, item) for a in args)
    if op == "or":
        return any(_cql(a, item) for a in args)
    if op == "not":
        return not _cql(args[0], item)
    if op == "s_intersects":
        geom = shape(item["geometry"])
        return geom.intersects(_cql(args[1], item))
    if op in _CQL_OPS:
        left, right = _cql(args[0], item), _cql(args[1], item)
        if isinstance(right, dt.datetime) and isinstance(left, str):
            left = _time(left)
        return _compare(_CQL_OPS[op], left, right)
    raise ValueError(f"unsupported CQL2 operator {op!r}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StacAPIServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        params = dict(parse_qsl(parts.query))
        self.server.log("GET", path or "/", params.get("token"), self.headers.get("User-Agent"))
        if path == "":
            return self._send(200, self.server.landing())
        if path == "/conformance":
            return self._send(200, {"conformsTo": CONFORMS_TO})
        if path == "/collections":
            return self._send(200, {"collections": self.server.collection_docs(), "links": []})
        if path.startswith("/collections/") and path.count("/") == 2:
            cid = path.rsplit("/", 1)[1]
            docs = [c for c in self.server.collection_docs() if c["id"] == cid]
            return self._send(200, docs[0]) if docs else self._send(404, {"code": "NotFound"})
        if path == "/search":
            return self._search("GET", self._from_query(params), params)
        return self._send(404, {"code": "NotFound", "description": path})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        token = body.get("next") or body.get("token")
        self.server.log("POST", path, token, self.headers.get("User-Agent"))
        if path != "/search":
            return self._send(404, {"code": "NotFound"})
        return self._search("POST", body, body)

    @staticmethod
    def _from_query(params: Mapping[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = dict(params)
        for key in ("collections", "ids"):
            if key in out:
                out[key] = out[key].split(",")
        if "bbox" in out:
            out["bbox"] = [float(v) for v in out["bbox"].split(",")]
        for key in ("query", "filter", "intersects"):
            if key in out:
                out[key] = json.loads(out[key])
        return out

    def _search(self, method: str, search: dict[str, Any], raw: Mapping[str, Any]) -> None:
        try:
            found = self.server.matching(search)
        except (ValueError, KeyError, TypeError) as e:
            return self._send(400, {"code": "BadRequest", "description": str(e)})
        limit = min(int(search.get("limit") or 10), _MAX_LIMIT)
        token = search.get("next") or search.get("token")
        start = int(token) if token else 0
        page = found[start : start + limit]
        links: list[dict[str, Any]] = [{"rel": "root", "href": self.server.url()}]
        if start + limit < len(found):
            nxt = str(start + limit)
            if method == "GET":
                query = {k: v for k, v in raw.items() if k != "token"}
                href = self.server.url("search") + "?" + urlencode({**query, "token": nxt})
                links.append({"rel": "next", "href": href, "type": "application/geo+json"})
            else:
                body = {k: v for k, v in raw.items() if k not in ("next", "token")}
                links.append(
                    {
                        "rel": "next",
                        "href": self.server.url("search"),
                        "method": "POST",
                        "body": {**body, "next": nxt},
                        "merge": False,
                    }
                )
        self._send(
            200,
            {
                "type": "FeatureCollection",
                "features": page,
                "links": links,
                "numberMatched": len(found),
                "numberReturned": len(page),
            },
        )


class StacAPIServer(ThreadingHTTPServer):
    """A threaded STAC API over ``items`` (dicts), with a log of the requests it saw.

    Parameters
    ----------
    items
        STAC item dicts; each needs ``id``, ``collection``, ``geometry`` and a time.
    port
        0 picks a free port.
    """

    daemon_threads = True

    def __init__(self, items: Iterable[Mapping[str, Any]], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.items = [dict(it) for it in items]
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, str | None]] = []
        """(method, path, page token) per request, in arrival order."""
        self.agents: set[str] = set()
        """The User-Agent headers seen (pystac-client sends requests')."""
        self._thread: threading.Thread | None = None
        for it in self.items:
            links = list(it.get("links") or [])
            if not any(link.get("rel") == "self" for link in links):
                links.append(
                    {
                        "rel": "self",
                        "href": self.url(f"collections/{it['collection']}/items/{it['id']}"),
                    }
                )
            it["links"] = links

    def url(self, path: str = "") -> str:
        """The URL of ``path`` under the API root (the root itself for ``""``)."""
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/{path}"

    def log(self, method: str, path: str, token: str | None, agent: str | None) -> None:
        with self.lock:
            self.requests.append((method, path, token))
            self.agents.add(agent or "")

    def searches(self) -> list[tuple[str, str | None]]:
        """(method, token) of each ``/search`` request."""
        with self.lock:
            return [(m, t) for m, p, t in self.requests if p == "/search"]

    def landing(self) -> dict[str, Any]:
        return {
            "type": "Catalog",
            "stac_version": "1.0.0",
            "id": "test-api",
            "title": "Test STAC API",
            "description": "A STAC API for tests",
            "conformsTo": CONFORMS_TO,
            "links": [
                {"rel": "self", "href": self.url(), "type": "application/json"},
                {"rel": "root", "href": self.url(), "type": "application/json"},
                {"rel": "conformance", "href": self.url("conformance")},
                {"rel": "data", "href": self.url("collections"), "type": "application/json"},
                {"rel": "search", "href": self.url("search"), "method": "GET",
                 "type": "application/geo+json"},
                {"rel": "search", "href": self.url("search"), "method": "POST",
                 "type": "application/geo+json"},
            ],
        }  # fmt: skip

    def collection_docs(self) -> list[dict[str, Any]]:
        ids = sorted({str(it["collection"]) for it in self.items})
        return [
            {
                "type": "Collection",
                "stac_version": "1.0.0",
                "id": cid,
                "description": cid,
                "license": "proprietary",
                "extent": {
                    "spatial": {"bbox": [[-180, -90, 180, 90]]},
                    "temporal": {"interval": [[None, None]]},
                },
                "links": [{"rel": "self", "href": self.url(f"collections/{cid}")}],
            }
            for cid in ids
        ]

    def matching(self, search: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The items a search selects, in the server's order."""
        out = []
        box = search.get("bbox")
        area = shapely.box(*box) if box else None
        when = _interval(search["datetime"]) if search.get("datetime") else None
        for it in self.items:
            if search.get("collections") and it.get("collection") not in search["collections"]:
                continue
            if search.get("ids") and it["id"] not in search["ids"]:
                continue
            if area is not None and not shape(it["geometry"]).intersects(area):
                continue
            if when is not None:
                first, last = _item_span(it)
                if (when[0] is not None and last < when[0]) or (
                    when[1] is not None and first > when[1]
                ):
                    continue
            props = it.get("properties") or {}
            query = search.get("query") or {}
            if not all(
                _compare(op, props.get(name), v)
                for name, ops in query.items()
                for op, v in ops.items()
            ):
                continue
            if search.get("filter") is not None and not _cql(search["filter"], it):
                continue
            out.append(it)
        return out

    def start(self) -> StacAPIServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> StacAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
