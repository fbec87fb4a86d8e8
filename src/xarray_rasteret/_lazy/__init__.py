"""xarray objects over the read path: lazy native and mosaic arrays, and Dataset assembly."""
