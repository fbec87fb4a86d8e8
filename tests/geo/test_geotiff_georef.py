"""Georeferencing of GeoTIFF IFDs (transform + CRS) against GDAL, through rasterio."""

from __future__ import annotations

import asyncio
import math
import struct
from pathlib import Path
from typing import Any

import async_tiff
import numpy as np
import pyproj
import pytest
from affine import Affine
from async_tiff.store import LocalStore

from xarray_rasteret.errors import UnsupportedTiffError
from xarray_rasteret.geo.geotiff import (
    Georeference,
    geo_keys_to_dict,
    georeference_from_ifd,
    georeference_from_tags,
    require_north_up,
)

rasterio = pytest.importorskip("rasterio")
from rasterio.control import GroundControlPoint  # noqa: E402
from rasterio.crs import CRS  # noqa: E402

W, H = 64, 48


# ----------------------------------------------------------------------------- helpers


def _read_ifd(path: Path) -> Any:
    async def run() -> Any:
        tiff = await async_tiff.TIFF.open(str(path), store=LocalStore())
        return tiff.ifds[0]

    return asyncio.run(run())


def _ours(path: Path, **kwargs: Any) -> Georeference:
    return georeference_from_ifd(_read_ifd(path), **kwargs)


def _write(path: Path, crs: Any = None, transform: Affine | None = None, **kwargs: Any) -> Path:
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": W,
        "height": H,
        "count": 1,
        "dtype": "uint8",
    }
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    point = kwargs.pop("point", False)
    profile.update(kwargs)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.arange(W * H, dtype="uint8").reshape(1, H, W))
        if point:
            dst.update_tags(AREA_OR_POINT="Point")
    return path


def _gdal(path: Path, **env: Any) -> tuple[Affine, Any]:
    with rasterio.Env(**env), rasterio.open(path) as src:
        return src.transform, src.crs


def _centred(cx: float, cy: float, px: float) -> Affine:
    return Affine(px, 0.0, cx - W / 2 * px, 0.0, -px, cy + H / 2 * px)


def _assert_same_transform(ours: Affine | None, gdal: Affine) -> None:
    assert ours is not None
    for a, b in zip(ours[:6], gdal[:6], strict=True):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (ours, gdal)


def _assert_same_crs(
    ours: str | None, gdal: Any, transform: Affine, *, equals: bool = True
) -> None:
    """Same CRS as GDAL's: pyproj-equal (when expected) and same coordinate maths."""
    assert ours is not None, "expected a CRS"
    a = pyproj.CRS(ours)
    b = pyproj.CRS(gdal.to_wkt())
    if b.is_bound:  # TOWGS84 (GDAL-private geokey, not exposed by async-tiff)
        b = b.source_crs
    assert a.equals(b, ignore_axis_order=True) is equals
    assert a.is_projected == b.is_projected
    # Same ellipsoid and prime meridian.
    assert math.isclose(a.ellipsoid.semi_major_metre, b.ellipsoid.semi_major_metre, rel_tol=1e-12)
    assert math.isclose(a.ellipsoid.semi_minor_metre, b.ellipsoid.semi_minor_metre, rel_tol=1e-12)
    pm_a = a.prime_meridian.longitude * a.prime_meridian.unit_conversion_factor
    pm_b = b.prime_meridian.longitude * b.prime_meridian.unit_conversion_factor
    assert math.isclose(pm_a, pm_b, rel_tol=1e-12, abs_tol=1e-15)
    if not b.is_projected:
        ua = a.axis_info[0].unit_conversion_factor
        assert math.isclose(ua, b.axis_info[0].unit_conversion_factor, rel_tol=1e-12)
        return
    # Same projection maths over the image grid, both directions.
    rows, cols = np.mgrid[0 : H + 1 : 4, 0 : W + 1 : 4]
    xs, ys = transform @ (cols.ravel().astype(float), rows.ravel().astype(float))
    to_geo_a = pyproj.Transformer.from_crs(a, a.geodetic_crs, always_xy=True)
    to_geo_b = pyproj.Transformer.from_crs(b, b.geodetic_crs, always_xy=True)
    lon_b, lat_b = to_geo_b.transform(xs, ys)
    lon_a, lat_a = to_geo_a.transform(xs, ys)
    assert np.all(np.isfinite(lon_b))
    np.testing.assert_allclose(lon_a, lon_b, rtol=0, atol=1e-8)
    np.testing.assert_allclose(lat_a, lat_b, rtol=0, atol=1e-8)
    from_geo_a = pyproj.Transformer.from_crs(a.geodetic_crs, a, always_xy=True)
    from_geo_b = pyproj.Transformer.from_crs(b.geodetic_crs, b, always_xy=True)
    x_a, y_a = from_geo_a.transform(lon_b, lat_b)
    x_b, y_b = from_geo_b.transform(lon_b, lat_b)
    np.testing.assert_allclose(x_a, x_b, rtol=0, atol=1e-3)
    np.testing.assert_allclose(y_a, y_b, rtol=0, atol=1e-3)


# A hand-written TIFF, for tag layouts GDAL does not write itself.

_GEOKEY_IDS = {
    "model_type": 1024,
    "raster_type": 1025,
    "citation": 1026,
    "geographic_type": 2048,
    "geog_geodetic_datum": 2050,
    "geog_prime_meridian": 2051,
    "geog_angular_units": 2054,
    "projected_type": 3072,
    "projection": 3074,
    "proj_coord_trans": 3075,
    "proj_linear_units": 3076,
    "proj_nat_origin_long": 3080,
    "proj_nat_origin_lat": 3081,
    "proj_false_easting": 3082,
    "proj_false_northing": 3083,
    "proj_scale_at_nat_origin": 3092,
}


def _write_raw(
    path: Path,
    *,
    geokeys: dict[str, int | float | str],
    scale: tuple[float, ...] | None = None,
    tiepoint: tuple[float, ...] | None = None,
    matrix: tuple[float, ...] | None = None,
) -> Path:
    """Minimal little-endian, single-strip uint8 GeoTIFF with the given geotags."""
    directory: list[int] = []
    doubles: list[float] = []
    ascii_params = ""
    for name, value in sorted(geokeys.items(), key=lambda kv: _GEOKEY_IDS[kv[0]]):
        key = _GEOKEY_IDS[name]
        if isinstance(value, str):
            directory += [key, 34737, len(value) + 1, len(ascii_params)]
            ascii_params += value + "|"
        elif isinstance(value, float):
            directory += [key, 34736, 1, len(doubles)]
            doubles.append(value)
        else:
            directory += [key, 0, 1, value]
    directory = [1, 1, 0, len(directory) // 4, *directory]

    # tag -> (type, count, payload bytes); types: 1 BYTE, 2 ASCII, 3 SHORT, 4 LONG, 12 DOUBLE
    pixels = bytes(range(256)) * (W * H // 256)
    tags: dict[int, tuple[int, int, bytes]] = {
        256: (3, 1, struct.pack("<H", W)),
        257: (3, 1, struct.pack("<H", H)),
        258: (3, 1, struct.pack("<H", 8)),
        259: (3, 1, struct.pack("<H", 1)),
        262: (3, 1, struct.pack("<H", 1)),
        273: (4, 1, b"\0\0\0\0"),  # patched below
        277: (3, 1, struct.pack("<H", 1)),
        278: (3, 1, struct.pack("<H", H)),
        279: (4, 1, struct.pack("<I", len(pixels))),
        34735: (3, len(directory), struct.pack(f"<{len(directory)}H", *directory)),
    }
    for tag, values in ((33550, scale), (33922, tiepoint), (34264, matrix), (34736, doubles)):
        if values:
            tags[tag] = (12, len(values), struct.pack(f"<{len(values)}d", *values))
    if ascii_params:
        raw = ascii_params.encode() + b"\0"
        tags[34737] = (2, len(raw), raw)

    ifd_size = 2 + 12 * len(tags) + 4
    offset = 8 + ifd_size
    entries, blobs = [], b""
    for tag in sorted(tags):
        typ, count, payload = tags[tag]
        if len(payload) <= 4:
            entries.append(struct.pack("<HHI", tag, typ, count) + payload.ljust(4, b"\0"))
        else:
            entries.append(struct.pack("<HHII", tag, typ, count, offset + len(blobs)))
            blobs += payload + (b"\0" if len(payload) % 2 else b"")
    strip_offset = offset + len(blobs)
    entries = [
        e if struct.unpack("<H", e[:2])[0] != 273 else e[:8] + struct.pack("<I", strip_offset)
        for e in entries
    ]
    data = b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(tags)) + b"".join(entries)
    data += b"\0\0\0\0" + blobs + pixels
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- CRS matrix

# name -> (CRS as given to rasterio, transform, pyproj-equal to GDAL's CRS?)
EPSG_CASES: dict[str, tuple[str, Affine]] = {
    "epsg4326": ("EPSG:4326", _centred(10.0, 45.0, 0.25)),
    "epsg3857": ("EPSG:3857", _centred(1e6, 5e6, 10_000.0)),
    "utm32633": ("EPSG:32633", _centred(500_000.0, 5_000_000.0, 10_000.0)),
    "utm32718": ("EPSG:32718", _centred(500_000.0, 8_000_000.0, 10_000.0)),
    "lambert93_2154": ("EPSG:2154", _centred(700_000.0, 6_600_000.0, 10_000.0)),
    "laea3035": ("EPSG:3035", _centred(4_321_000.0, 3_210_000.0, 10_000.0)),
    "polar3413": ("EPSG:3413", _centred(0.0, -1_000_000.0, 50_000.0)),
}

_KM = _centred(0.0, 0.0, 10_000.0)
CUSTOM_CASES: dict[str, tuple[str, Affine, bool]] = {
    "laea": ("+proj=laea +lat_0=45 +lon_0=-100 +x_0=0 +y_0=0 +ellps=WGS84 +units=m", _KM, True),
    "aea": (
        "+proj=aea +lat_1=29.5 +lat_2=45.5 +lat_0=23 +lon_0=-96 +x_0=10 +y_0=20 +ellps=GRS80",
        _KM,
        True,
    ),
    "lcc_2sp": (
        "+proj=lcc +lat_1=33 +lat_2=45 +lat_0=39 +lon_0=-96 +x_0=1000 +y_0=2000 +datum=WGS84",
        _KM,
        True,
    ),
    "lcc_1sp": (
        "+proj=lcc +lat_1=40 +lat_0=40 +lon_0=10 +k_0=0.999 +x_0=100 +y_0=200 +datum=WGS84",
        _KM,
        True,
    ),
    "tmerc_custom_ellipsoid": (
        "+proj=tmerc +lat_0=10 +lon_0=20 +k=0.9995 +x_0=500000 +y_0=100 +a=6378000 +rf=299",
        _centred(500_000.0, 1_000_000.0, 10_000.0),
        True,
    ),
    "tmerc_us_ft_nad83": (
        "+proj=tmerc +lat_0=0 +lon_0=-120 +k=0.9996 +x_0=500000 +y_0=0 +datum=NAD83 +units=us-ft",
        _centred(1_640_416.0, 13_000_000.0, 30_000.0),
        True,
    ),
    "tmerc_intl_ellps": (
        "+proj=tmerc +lat_0=0 +lon_0=9 +k=1 +x_0=3500000 +y_0=0 +ellps=intl",
        _centred(3_500_000.0, 5_000_000.0, 10_000.0),
        True,
    ),
    "sinu_sphere": ("+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181", _KM, True),
    # GDAL gives polar CRSs EPSG-style axes (both "south" at the north pole, both
    # "north" at the south pole), and so do we.
    "polar_stere_north": ("+proj=stere +lat_0=90 +lat_ts=70 +lon_0=-45 +datum=WGS84", _KM, True),
    "polar_stere_south_k": (
        "+proj=stere +lat_0=-90 +lon_0=0 +k=0.994 +x_0=2000000 +y_0=2000000 +datum=WGS84",
        _centred(2_000_000.0, 2_000_000.0, 10_000.0),
        True,
    ),
    "stere_oblique": (
        "+proj=stere +lat_0=52 +lon_0=5 +k=0.9999 +x_0=1 +y_0=2 +ellps=bessel",
        _KM,
        True,
    ),
    "sterea": (
        "+proj=sterea +lat_0=52 +lon_0=5 +k=0.9999 +x_0=155000 +y_0=463000 +ellps=bessel",
        _centred(155_000.0, 463_000.0, 10_000.0),
        True,
    ),
    "merc_1sp": ("+proj=merc +lon_0=10 +k=0.99 +x_0=5 +y_0=6 +datum=WGS84", _KM, True),
    "merc_2sp": ("+proj=merc +lon_0=10 +lat_ts=30 +x_0=5 +y_0=6 +datum=WGS84", _KM, True),
    "eqc": ("+proj=eqc +lat_ts=30 +lat_0=0 +lon_0=10 +x_0=0 +y_0=0 +datum=WGS84", _KM, True),
    "ortho": ("+proj=ortho +lat_0=40 +lon_0=-100 +x_0=0 +y_0=0 +ellps=WGS84", _KM, True),
    "cea": ("+proj=cea +lat_ts=30 +lon_0=10 +datum=WGS84", _KM, True),
    "robin": ("+proj=robin +lon_0=10 +datum=WGS84", _KM, True),
    "poly": ("+proj=poly +lat_0=10 +lon_0=20 +datum=WGS84", _KM, True),
    "gnom": ("+proj=gnom +lat_0=10 +lon_0=20 +datum=WGS84", _KM, True),
    "mill": ("+proj=mill +lon_0=20 +R=6371000", _KM, True),
    "vandg": ("+proj=vandg +lon_0=20 +R=6371000", _KM, True),
    "aeqd": ("+proj=aeqd +lat_0=10 +lon_0=20 +datum=WGS84", _KM, True),
    # (PROJ's ellipsoidal Cassini inverse is only defined close to the meridian.)
    "cass": ("+proj=cass +lat_0=10 +lon_0=20 +datum=WGS84", _centred(0, 0, 1000.0), True),
    "eqdc": ("+proj=eqdc +lat_1=20 +lat_2=50 +lat_0=30 +lon_0=20 +datum=WGS84", _KM, True),
    # No GeoTIFF keys for these: GDAL writes an ESRI PE string citation.
    "moll_esri_pe": ("+proj=moll +lon_0=10 +datum=WGS84", _KM, True),
    "eck4_esri_pe": ("+proj=eck4 +lon_0=10 +datum=WGS84", _KM, True),
    # Geographic CRSs without EPSG code.
    "longlat_sphere": ("+proj=longlat +R=6371000", _centred(10.0, 45.0, 0.25), True),
    "longlat_custom_pm": ("+proj=longlat +a=6378000 +rf=300 +pm=2.5", _centred(10, 45, 0.25), True),
    "longlat_paris_towgs84": (
        "+proj=longlat +ellps=clrk80ign +pm=paris +towgs84=0,0,0",
        _centred(10.0, 45.0, 0.25),
        True,
    ),
}

HOM_CASES = {
    # (proj string, ProjRectifiedGridAngleGeoKey GDAL wrote)
    "omerc_variant_b": (
        "+proj=omerc +lat_0=4 +lonc=102.25 +alpha=323.0257905 +k=0.99984 +x_0=804671 +y_0=0 "
        "+ellps=WGS84",
        323.0257905,
    ),
    "omerc_variant_b_gamma": (
        "+proj=omerc +lat_0=4 +lonc=102.25 +alpha=323.0257905 +gamma=323.1301023611 +k=0.99984 "
        "+x_0=804671 +y_0=0 +ellps=WGS84",
        323.1301023611,
    ),
    "omerc_variant_a": (
        "+proj=omerc +no_uoff +lat_0=4 +lonc=102.25 +alpha=323.0257905 +gamma=323.1301023611 "
        "+k=0.99984 +x_0=804671 +y_0=0 +ellps=WGS84",
        323.1301023611,
    ),
}


@pytest.mark.parametrize("name", list(EPSG_CASES))
def test_epsg_crs(tmp_path: Path, name: str) -> None:
    crs, transform = EPSG_CASES[name]
    path = _write(tmp_path / f"{name}.tif", crs, transform)
    ours = _ours(path)
    gdal_transform, gdal_crs = _gdal(path)
    _assert_same_transform(ours.transform, gdal_transform)
    assert ours.crs == crs
    _assert_same_crs(ours.crs, gdal_crs, gdal_transform)
    assert not ours.pixel_is_point


@pytest.mark.parametrize("name", list(CUSTOM_CASES))
def test_user_defined_crs(tmp_path: Path, name: str) -> None:
    proj4, transform, equals = CUSTOM_CASES[name]
    path = _write(tmp_path / f"{name}.tif", CRS.from_proj4(proj4), transform)
    ours = _ours(path)
    gdal_transform, gdal_crs = _gdal(path)
    _assert_same_transform(ours.transform, gdal_transform)
    assert ours.crs is not None and not ours.crs.startswith("EPSG:")
    _assert_same_crs(ours.crs, gdal_crs, gdal_transform, equals=equals)


@pytest.mark.parametrize("name", list(HOM_CASES))
def test_hotine_oblique_mercator(tmp_path: Path, name: str) -> None:
    proj4, grid_angle = HOM_CASES[name]
    path = _write(tmp_path / f"{name}.tif", CRS.from_proj4(proj4), _centred(804_671.0, 0.0, 1e4))
    gdal_transform, gdal_crs = _gdal(path)
    # async-tiff drops ProjRectifiedGridAngleGeoKey (3096): the IFD alone is not
    # enough, and no CRS is better than a wrong one.
    ifd = _read_ifd(path)
    assert georeference_from_ifd(ifd).crs is None
    # With the angle supplied, the mapping matches GDAL.
    keys = geo_keys_to_dict(ifd.geo_key_directory) | {"proj_rectified_grid_angle": grid_angle}
    ours = georeference_from_tags(
        model_pixel_scale=ifd.model_pixel_scale,
        model_tiepoint=ifd.model_tiepoint,
        model_transformation=ifd.model_transformation,
        geo_keys=keys,
        image_width=W,
        image_height=H,
    )
    _assert_same_transform(ours.transform, gdal_transform)
    _assert_same_crs(ours.crs, gdal_crs, gdal_transform)


def test_projection_code_and_grads_and_paris_meridian(tmp_path: Path) -> None:
    """ProjectionGeoKey (EPSG conversion code) and angles in grads on a Paris meridian."""
    utm = _write_raw(
        tmp_path / "projection_code.tif",
        geokeys={
            "model_type": 1,
            "raster_type": 1,
            "geographic_type": 4326,
            "projected_type": 32767,
            "projection": 16033,  # UTM zone 33N
            "proj_linear_units": 9001,
        },
        scale=(10_000.0, 10_000.0, 0.0),
        tiepoint=(0, 0, 0, 180_000.0, 5_240_000.0, 0.0),
    )
    ntf = _write_raw(
        tmp_path / "grads.tif",
        geokeys={
            "model_type": 1,
            "raster_type": 1,
            "geographic_type": 32767,
            "geog_geodetic_datum": 6807,  # NTF (Paris)
            "geog_prime_meridian": 8903,  # Paris
            "geog_angular_units": 9105,  # grad
            "projected_type": 32767,
            "projection": 32767,
            "proj_coord_trans": 9,  # LCC 1SP
            "proj_linear_units": 9001,
            "proj_nat_origin_lat": 52.0,
            "proj_nat_origin_long": 0.0,
            "proj_scale_at_nat_origin": 0.99987742,
            "proj_false_easting": 600_000.0,
            "proj_false_northing": 2_200_000.0,
        },
        scale=(10_000.0, 10_000.0, 0.0),
        tiepoint=(0, 0, 0, 280_000.0, 2_440_000.0, 0.0),
    )
    for path in (utm, ntf):
        ours = _ours(path)
        gdal_transform, gdal_crs = _gdal(path)
        _assert_same_transform(ours.transform, gdal_transform)
        _assert_same_crs(ours.crs, gdal_crs, gdal_transform)


# ----------------------------------------------------------------------------- transforms


def test_south_up_model_transformation(tmp_path: Path) -> None:
    path = _write(tmp_path / "south.tif", "EPSG:32633", Affine(10, 0, 1000, 0, 10, 2000))
    assert _read_ifd(path).model_transformation is not None  # GDAL writes the matrix
    ours = _ours(path)
    gdal_transform, _ = _gdal(path)
    _assert_same_transform(ours.transform, gdal_transform)
    assert ours.transform is not None and ours.transform.e > 0
    require_north_up(ours.transform, "south.tif")  # axis-aligned: accepted


def test_negative_pixel_scale_y(tmp_path: Path) -> None:
    """GDAL reads a negative ScaleY as north-up unless GTIFF_HONOUR_NEGATIVE_SCALEY=YES."""
    path = _write_raw(
        tmp_path / "south_scale.tif",
        geokeys={"model_type": 1, "raster_type": 1, "projected_type": 32633},
        scale=(10.0, -10.0, 0.0),
        tiepoint=(0, 0, 0, 1000.0, 2000.0, 0.0),
    )
    ifd = _read_ifd(path)
    ours = georeference_from_ifd(ifd)
    gdal_transform, gdal_crs = _gdal(path)
    assert gdal_transform.e < 0
    _assert_same_transform(ours.transform, gdal_transform)
    assert ours.crs == "EPSG:32633" and gdal_crs.to_epsg() == 32633
    honoured = georeference_from_ifd(ifd, honour_negative_scale_y=True)
    gdal_honoured, _ = _gdal(path, GTIFF_HONOUR_NEGATIVE_SCALEY=True)
    assert gdal_honoured.e > 0
    _assert_same_transform(honoured.transform, gdal_honoured)


def test_west_left_negative_x_scale(tmp_path: Path) -> None:
    path = _write(tmp_path / "west.tif", "EPSG:32633", Affine(-10, 0, 1000, 0, -10, 2000))
    ours = _ours(path)
    _assert_same_transform(ours.transform, _gdal(path)[0])


def test_tiepoint_not_at_origin(tmp_path: Path) -> None:
    path = _write_raw(
        tmp_path / "tie.tif",
        geokeys={"model_type": 1, "raster_type": 1, "projected_type": 32633},
        scale=(30.0, 20.0, 0.0),
        tiepoint=(10, 20, 0, 500_000.0, 4_000_000.0, 0.0),
    )
    ours = _ours(path)
    gdal_transform, _ = _gdal(path)
    _assert_same_transform(ours.transform, gdal_transform)
    assert ours.transform == Affine(30, 0, 500_000 - 300, 0, -20, 4_000_000 + 400)


@pytest.mark.parametrize(
    "transform",
    [Affine(10, 0, 1000, 0, -10, 2000), Affine.translation(1e3, 2e3) @ Affine.rotation(30)],
    ids=["north_up", "rotated"],
)
def test_pixel_is_point(tmp_path: Path, transform: Affine) -> None:
    path = _write(tmp_path / "point.tif", "EPSG:32633", transform, point=True)
    ifd = _read_ifd(path)
    assert ifd.geo_key_directory.raster_type == 2
    ours = georeference_from_ifd(ifd)
    assert ours.pixel_is_point
    _assert_same_transform(ours.transform, _gdal(path)[0])
    # GTIFF_POINT_GEO_IGNORE=YES: the tags are taken at face value.
    ignored = georeference_from_ifd(ifd, point_geo_ignore=True)
    _assert_same_transform(ignored.transform, _gdal(path, GTIFF_POINT_GEO_IGNORE=True)[0])
    assert ignored.transform != ours.transform


def test_rotated_transform_is_returned_and_refused(tmp_path: Path) -> None:
    rotated = Affine.translation(1000, 2000) @ Affine.rotation(30) @ Affine.scale(10, -10)
    path = _write(tmp_path / "rot.tif", "EPSG:32633", rotated)
    ours = _ours(path)
    _assert_same_transform(ours.transform, _gdal(path)[0])
    assert ours.transform is not None and ours.transform.b != 0 and ours.transform.d != 0
    with pytest.raises(UnsupportedTiffError, match=r"rot\.tif.*rotated/sheared.*gdalwarp"):
        require_north_up(ours.transform, "s3://bucket/rot.tif")
    sheared = Affine(10, 0.5, 0, 0, -10, 0)
    with pytest.raises(UnsupportedTiffError, match="not supported"):
        require_north_up(sheared, "x.tif")
    require_north_up(None, "x.tif")


def test_not_georeferenced(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.tif")
    ours = _ours(path)
    assert ours == Georeference(transform=None, crs=None, pixel_is_point=False)
    assert not ours.is_georeferenced


def test_identity_model_transformation_is_kept(tmp_path: Path) -> None:
    # GDAL treats an explicit identity matrix as a valid geotransform (no warning).
    path = _write(tmp_path / "identity.tif", None, Affine.identity())
    ours = _ours(path)
    assert ours.transform == Affine.identity() == _gdal(path)[0]
    assert ours.crs is None


def test_gcps_only_are_not_an_affine_transform(tmp_path: Path) -> None:
    gcps = [
        GroundControlPoint(row=0, col=0, x=10.0, y=50.0),
        GroundControlPoint(row=0, col=W, x=11.0, y=50.1),
        GroundControlPoint(row=H, col=0, x=10.1, y=49.0),
    ]
    path = _write(tmp_path / "gcps.tif", gcps=gcps, crs="EPSG:4326")
    with rasterio.open(path) as src:
        assert len(src.gcps[0]) == 3
    assert len(_read_ifd(path).model_tiepoint) == 18
    ours = _ours(path)
    assert ours.transform is None
    assert ours.crs == "EPSG:4326"


# ----------------------------------------------------------------------------- no wrong CRS


_BASE_KEYS = {
    "model_type": 1,
    "raster_type": 1,
    "geographic_type": 4326,
    "projected_type": 32767,
    "proj_linear_units": 9001,
}


@pytest.mark.parametrize(
    "keys",
    [
        {**_BASE_KEYS},  # user-defined, no method at all
        {**_BASE_KEYS, "proj_coord_trans": 1, "proj_linear_units": 9999},  # unknown unit
        {**_BASE_KEYS, "proj_coord_trans": 1, "geographic_type": 32767},  # no ellipsoid
        {
            **_BASE_KEYS,
            "proj_coord_trans": 15,
            "proj_nat_origin_lat": 70.0,
            "proj_scale_at_nat_origin": 0.99,
        },  # polar stereographic, k != 1 off the pole
        {"model_type": 32767, "citation": "my own"},  # user-defined model, no PE string
        {"model_type": 3, "geographic_type": 4326},  # geocentric
        {
            "model_type": 2,
            "geographic_type": 32767,
            "geog_semi_major_axis": 6378137.0,
            "geog_angular_units": 9999,
        },  # unknown angular unit
    ],
    ids=[
        "no_ct",
        "bad_unit",
        "no_ellipsoid",
        "ps_variant_a_off_pole",
        "user_model",
        "geocentric",
        "bad_angular_unit",
    ],
)
def test_unmappable_keys_give_no_crs(keys: dict[str, Any]) -> None:
    ours = georeference_from_tags(
        model_pixel_scale=[1.0, 1.0, 0.0],
        model_tiepoint=[0, 0, 0, 0.0, 0.0, 0.0],
        model_transformation=None,
        geo_keys=keys,
        image_width=W,
        image_height=H,
    )
    assert ours.crs is None
    assert ours.transform == Affine(1, 0, 0, 0, -1, 0)


def test_unknown_epsg_code_without_other_keys_gives_no_crs() -> None:
    ours = georeference_from_tags(
        model_pixel_scale=None,
        model_tiepoint=None,
        model_transformation=None,
        geo_keys={"model_type": 1, "projected_type": 5},
        image_width=W,
        image_height=H,
    )
    assert ours == Georeference(transform=None, crs=None, pixel_is_point=False)
