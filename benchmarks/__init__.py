"""Benchmarks of xarray-rasteret against rasterio and rioxarray on served COGs.

Run ``python -m benchmarks --quick`` (about 2 minutes) or ``python -m benchmarks``.
"""
