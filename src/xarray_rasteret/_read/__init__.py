"""The read path: read tasks planned (pure), fetched, decoded and pasted; no xarray, no index."""
