"""Building collections: COG headers parsed once (async-tiff) into index rows."""

from .builder import build, build_async
from .open import as_collection

__all__ = ["as_collection", "build", "build_async"]
