"""Deflate streams read only as far as a tile needs, and checked for a proper end.

:func:`inflate_prefix` inflates the first rows of a tile and stops (a read of
the top of a tile need not inflate the rest); :func:`check_stream_ends` tells a
stream padded past its tile (which libtiff accepts) from one cut off or damaged.
Both use the decoders of :mod:`.decode` and are pure CPU work.
"""

from __future__ import annotations

from typing import Any

import imagecodecs
import numpy as np

__all__ = ["check_stream_ends", "inflate_prefix"]

_ic: Any = imagecodecs


def check_stream_ends(inflate: Any, budget: int) -> None:
    """Raise ValueError if the rest of a deflate stream is cut off before its end.

    Output past the tile is ignored (libtiff's rule: some writers pad strips), but
    a stream that stops without its final block is damaged, and what it decoded
    into the tile may be too. The rest is inflated in pieces and dropped, at most
    ``budget`` bytes: a stream still running then is taken as padding.
    """
    while not inflate.eof and budget > 0:
        tail = inflate.unconsumed_tail
        if not tail:
            raise ValueError("its deflate stream is cut off before its end: truncated or corrupt")
        budget -= len(inflate.decompress(tail, min(budget, 2**16)))


# A deflate decoder that runs out of room stops at the literal, match (<= 258
# bytes) or stored block (<= 65535 bytes) that does not fit, having written
# everything before it: bytes further than this from the end of a too-small
# buffer are final.
_PREFIX_MARGIN = 65535 + 258 + 1024


def inflate_prefix(
    data: bytes | bytearray | memoryview, dest: np.ndarray, nbytes: int
) -> int | None:
    """Inflate at least the first ``nbytes`` of a deflate tile into ``dest``.

    Returns how many bytes of ``dest`` the decoder was given (it stopped when
    they ran out), or None, having done nothing useful, when the prefix is not
    much shorter than the tile or the decoder does not report running out of
    room (then the caller decodes the whole tile, with its checks and messages).
    """
    limit = nbytes + _PREFIX_MARGIN
    if limit >= dest.size:
        return None
    try:
        _ic.deflate_decode(data, out=dest[:limit])
    except Exception as exc:
        # libdeflate: "... returned LIBDEFLATE_INSUFFICIENT_SPACE". Anything else
        # (corrupt data, another decoder behind the name) takes the full path.
        return limit if "INSUFFICIENT_SPACE" in str(exc) else None
    return None  # the stream ended early: a short tile, which the full path reports
