"""The bare pipeline: a scenario's floor, run for real with no library in the way.

The floor (:mod:`.floor`) adds up ideal parts: one round trip, the bytes at
the measured single-stream bandwidth, the decode time spread over the cores.
The bare pipeline does that work through the same server, on the same cores,
as simply as it can be done in Python:

* one plain HTTP/1.1 ``Range`` GET per tile (per file for Build: the header
  bytes), each on its own new connection, all sent at once from one asyncio
  loop (raw streams: no HTTP library, no retries, no checks beyond the status);
  over the S3 API each GET is signed with botocore's ``S3SigV4Auth`` first;
* each body, as it arrives, decoded in a pool of ``cores`` threads with the
  floor's decoder (:func:`.floor.decode_floor_tile`);
* nothing else: no index, no planning, no output array.

Its time is what this machine and this server allow a minimal client. The
difference between the floor and the bare pipeline is the environment
(connection setup, a Python server and the tools sharing two cores, receiving
many streams at once); the difference between the bare pipeline and a tool is
that tool's own work.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import numpy as np

from .floor import Floor, decode_floor_tile

__all__ = ["bare_seconds"]


Keys = tuple[str, str, str]  # access key, secret key, region


def _signed(keys: Keys, url: str, headers: dict[str, str]) -> dict[str, str]:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url, headers=headers)
    S3SigV4Auth(Credentials(keys[0], keys[1]), "s3", keys[2]).add_auth(request)
    return dict(request.headers.items())


async def _get(
    host: str, port: int, path: str, start: int, length: int, keys: Keys | None
) -> bytes:
    """One ``Range`` GET on a new connection (signed with ``keys`` if given); the body."""
    headers = {"Range": f"bytes={start}-{start + length - 1}"}
    if keys is not None:
        headers = _signed(keys, f"http://{host}:{port}{path}", headers)
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{lines}Connection: close\r\n\r\n"
            .encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 206:
            raise RuntimeError(f"bare pipeline: HTTP {status} for {path} bytes {start}+{length}")
        fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
        size = int(next(v for k, v in fields.items() if k.strip().lower() == b"content-length"))
        return await reader.readexactly(size)
    finally:
        writer.close()


def _decode(blob: bytes, shape: tuple[int, int]) -> None:
    decode_floor_tile(blob, np.empty(shape, np.uint16))


async def _pipeline(base_url: str, floor: Floor, keys: Keys | None) -> int:
    """Fetch (and decode) every range of ``floor``; the bytes received."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    prefix = url.path.rstrip("/")
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(floor.cores) as pool:

        async def one(file: str, start: int, length: int) -> int:
            blob = await _get(host, port, f"{prefix}/{file}", start, length, keys)
            if floor.shape is not None:
                await loop.run_in_executor(pool, _decode, blob, floor.shape)
            return len(blob)

        sizes = await asyncio.gather(*(one(*r) for r in floor.ranges))
    return sum(sizes)


def bare_seconds(
    base_url: str, floor: Floor, repeats: int = 5, keys: Keys | None = None
) -> list[float]:
    """Seconds of each of ``repeats`` runs of the bare pipeline of ``floor``.

    Parameters
    ----------
    base_url
        Where the data root is served: ``http://host:port/`` (the range server)
        or ``http://host:port/bucket/`` (moto).
    floor
        The scenario's floor: its byte ranges and tile shape.
    repeats
        Runs; each opens new connections and a new thread pool.
    keys
        ``(access key, secret key, region)`` to sign each GET with (S3 API).

    Returns
    -------
    list of float
        Wall seconds per run, from the first connection to the last decoded tile.
    """
    expected = sum(n for _, _, n in floor.ranges)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        got = asyncio.run(_pipeline(base_url, floor, keys))
        out.append(time.perf_counter() - t0)
        if got != expected:
            raise RuntimeError(f"bare pipeline received {got} bytes, expected {expected}")
    return out
