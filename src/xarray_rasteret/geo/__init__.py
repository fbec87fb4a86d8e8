"""Georeferencing: GeoTIFF geokeys to affine transforms and CRSs, and pixel-grid helpers."""
