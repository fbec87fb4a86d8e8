"""GeoKeys GDAL honours beyond an EPSG code, and projections it reads from ProjCoordTrans.

Each case writes a small GeoTIFF whose GeoKey directory is set key by key
(GDAL cannot be made to write most of these), reads its CRS with our
``georeference_from_ifd`` and with rasterio, and requires ``pyproj.CRS``
equality with rasterio's ``crs.to_wkt()``.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import async_tiff
import pyproj
import pytest
from async_tiff.store import LocalStore

from xarray_rasteret.geo.geotiff import geo_keys_from_header, georeference_from_ifd

rasterio = pytest.importorskip("rasterio")

# GeoKey ids
MODEL, RASTER, CITATION = 1024, 1025, 1026
GEOGRAPHIC, GEOG_CITATION, DATUM, ANGULAR = 2048, 2049, 2050, 2054
ELLIPSOID, SEMI_MAJOR, SEMI_MINOR, INV_FLATTENING, TOWGS84 = 2056, 2057, 2058, 2059, 2062
PROJECTED, PROJECTION, COORD_TRANS, LINEAR = 3072, 3074, 3075, 3076
STD_PARALLEL1, NAT_LONG, NAT_LAT, FALSE_E, FALSE_N = 3078, 3080, 3081, 3082, 3083
CENTER_LONG, CENTER_LAT, SCALE_NAT, SCALE_CENTER, AZIMUTH = 3088, 3089, 3092, 3093, 3094
POLE_LONG, GRID_ANGLE = 3095, 3096
VERTICAL, VERTICAL_DATUM, VERTICAL_UNITS = 4096, 4098, 4099

W = H = 8


def write_geotiff(path: Path, keys: dict[int, Any]) -> Path:
    """An 8x8 uint8 little-endian TIFF with exactly these GeoKeys (ints inline, floats/tuples
    in GeoDoubleParams, strings in GeoAsciiParams)."""
    directory: list[int] = []
    doubles: list[float] = []
    text = ""
    for key in sorted(keys):
        value = keys[key]
        if isinstance(value, int):
            directory += [key, 0, 1, value]
        elif isinstance(value, str):
            directory += [key, 34737, len(value) + 1, len(text)]
            text += value + "|"
        else:
            values = value if isinstance(value, tuple) else (value,)
            directory += [key, 34736, len(values), len(doubles)]
            doubles += [float(v) for v in values]
    directory = [1, 1, 0, len(keys), *directory]
    pixels = bytes(range(W * H))
    tags: list[tuple[int, int, list[Any] | bytes]] = [
        (256, 3, [W]),
        (257, 3, [H]),
        (258, 3, [8]),
        (259, 3, [1]),
        (262, 3, [1]),
        (273, 4, [0]),  # patched below
        (277, 3, [1]),
        (278, 3, [H]),
        (279, 4, [len(pixels)]),
        (33550, 12, [1.0, 1.0, 0.0]),
        (33922, 12, [0.0, 0.0, 0.0, 1000.0, 2000.0, 0.0]),
        (34735, 3, directory),
    ]
    if doubles:
        tags.append((34736, 12, doubles))
    if text:
        tags.append((34737, 2, text.encode("ascii") + b"\0"))
    fmt = {3: "H", 4: "I", 12: "d"}
    size = {3: 2, 4: 4, 12: 8, 2: 1}
    ifd_size = 2 + 12 * len(tags) + 4
    data_at = 8 + ifd_size
    blobs = b""
    entries = b""
    for tag, kind, values in tags:
        raw = (
            values
            if isinstance(values, bytes)
            else struct.pack("<" + fmt[kind] * len(values), *values)
        )
        count = len(values) if not isinstance(values, bytes) else len(raw)
        if tag == 273:
            raw = b"\0\0\0\0"  # placeholder, pixel offset set once the blobs are laid out
        if len(raw) <= 4:
            entries += struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\0")
        else:
            entries += struct.pack("<HHII", tag, kind, count, data_at + len(blobs))
            blobs += raw + (b"\0" if len(raw) % 2 else b"")
    pixel_at = data_at + len(blobs)
    entries = entries.replace(
        struct.pack("<HHI", 273, 4, 1) + b"\0\0\0\0",
        struct.pack("<HHII", 273, 4, 1, pixel_at),
    )
    assert size  # kinds used above
    head = b"II" + struct.pack("<HI", 42, 8) + struct.pack("<H", len(tags))
    path.write_bytes(head + entries + b"\0\0\0\0" + blobs + pixels)
    return path


def _ours(path: Path, header: bool = True) -> str | None:
    async def run() -> Any:
        tiff = await async_tiff.TIFF.open(str(path), store=LocalStore())
        return tiff.ifds[0]

    ifd = asyncio.run(run())
    data = path.read_bytes() if header else None
    return georeference_from_ifd(ifd, header=data).crs


def _gdal(path: Path) -> pyproj.CRS:
    with rasterio.open(path) as src:
        return pyproj.CRS(src.crs.to_wkt(version="WKT2_2019"))


def _same_as_gdal(path: Path) -> str:
    ours = _ours(path)
    assert ours is not None
    gdal = _gdal(path)
    assert pyproj.CRS(ours) == gdal, f"\nours: {pyproj.CRS(ours).to_wkt()}\nGDAL: {gdal.to_wkt()}"
    return ours


_WGS84_USER_TM = {
    MODEL: 1,
    RASTER: 1,
    GEOGRAPHIC: 4326,
    ANGULAR: 9102,
    PROJECTED: 32767,
    PROJECTION: 32767,
    COORD_TRANS: 1,
    LINEAR: 9001,
    NAT_LONG: 9.0,
    NAT_LAT: 0.0,
    SCALE_NAT: 0.9996,
    FALSE_E: 500000.0,
    FALSE_N: 0.0,
}


# ------------------------------------------------------------------ overriding keys


def test_geographic_code_with_explicit_ellipsoid_takes_the_explicit_one(tmp_path: Path) -> None:
    # NAD83 (a static datum) with the Clarke 1866 semi-axes spelled out.
    keys = {MODEL: 2, RASTER: 1, GEOGRAPHIC: 4269, SEMI_MAJOR: 6378206.4, SEMI_MINOR: 6356583.8}
    ours = _same_as_gdal(write_geotiff(tmp_path / "g.tif", keys))
    assert pyproj.CRS(ours).ellipsoid.semi_major_metre == 6378206.4


def test_dynamic_geographic_code_keeps_its_ellipsoid(tmp_path: Path) -> None:
    # GDAL reads a geographic WGS 84 (dynamic) from the registry, warning that the keys differ.
    keys = {MODEL: 2, RASTER: 1, GEOGRAPHIC: 4326, SEMI_MAJOR: 6378140.0, INV_FLATTENING: 298.257}
    assert _same_as_gdal(write_geotiff(tmp_path / "g.tif", keys)) == "EPSG:4326"


def test_geographic_code_with_its_own_ellipsoid_stays_the_code(tmp_path: Path) -> None:
    # Writers print GRS 80's 298.257222101 as 298.257222101004: the same ellipsoid.
    path = write_geotiff(
        tmp_path / "g.tif",
        {MODEL: 2, GEOGRAPHIC: 4269, SEMI_MAJOR: 6378137.0, INV_FLATTENING: 298.257222101004},
    )
    assert _same_as_gdal(path) == "EPSG:4269"


def test_geographic_code_with_other_ellipsoid_code(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "g.tif", {MODEL: 2, GEOGRAPHIC: 4269, ELLIPSOID: 7022})
    ours = _same_as_gdal(path)
    assert pyproj.CRS(ours).ellipsoid.semi_major_metre == 6378388.0  # International 1924


def test_user_defined_projection_on_overridden_geographic_code(tmp_path: Path) -> None:
    # As rio-cogeo's fixtures: a user-defined projection on WGS 84 with the IAU 76 axes.
    keys = {**_WGS84_USER_TM, SEMI_MAJOR: 6378140.0, INV_FLATTENING: 298.257}
    ours = _same_as_gdal(write_geotiff(tmp_path / "p.tif", keys))
    assert pyproj.CRS(ours).ellipsoid.semi_major_metre == 6378140.0


@pytest.mark.parametrize(("pcs", "unit"), [(32064, 9036), (32633, 9002), (32633, 9003)])
def test_projected_code_with_other_linear_units(tmp_path: Path, pcs: int, unit: int) -> None:
    # e.g. NAD27 / BLM 14N (US feet) with kilometre units: GDAL reports kilometres.
    path = write_geotiff(tmp_path / "p.tif", {MODEL: 1, RASTER: 1, PROJECTED: pcs, LINEAR: unit})
    ours = _same_as_gdal(path)
    assert not ours.startswith("EPSG:")


def test_projected_code_with_its_own_linear_units_stays_the_code(tmp_path: Path) -> None:
    path = write_geotiff(tmp_path / "p.tif", {MODEL: 1, PROJECTED: 32633, LINEAR: 9001})
    assert _same_as_gdal(path) == "EPSG:32633"


_TM_KEYS = {COORD_TRANS: 1, NAT_LAT: 0.0, NAT_LONG: 15.0, SCALE_NAT: 0.9996, FALSE_E: 4e5}


@pytest.mark.parametrize(
    "keys",
    [
        {**_TM_KEYS, FALSE_N: 0.0},  # all parameters, one differing from EPSG's
        {COORD_TRANS: 1, FALSE_E: 400000.0},  # some: the others get libgeotiff's defaults
        {GEOGRAPHIC: 4230},  # another datum (ED50) under the PCS's projection
        {PROJECTION: 16031},  # a conversion code alone: GDAL keeps the PCS's
    ],
    ids=["coord_trans_full", "coord_trans_partial", "other_geographic", "projection_code"],
)
def test_projected_code_with_keys_beside_it(tmp_path: Path, keys: dict[int, Any]) -> None:
    _same_as_gdal(write_geotiff(tmp_path / "p.tif", {MODEL: 1, PROJECTED: 32633, **keys}))


def test_projected_code_with_geographic_keys_overriding_the_ellipsoid(tmp_path: Path) -> None:
    keys = {MODEL: 1, PROJECTED: 32633, GEOGRAPHIC: 4326, SEMI_MAJOR: 6378140.0}
    _same_as_gdal(write_geotiff(tmp_path / "p.tif", keys))


def test_vertical_keys_are_left_out_as_gdal_does(tmp_path: Path) -> None:
    # GDAL reports the horizontal CRS unless GTIFF_REPORT_COMPD_CS=YES.
    keys = {MODEL: 1, PROJECTED: 32633, VERTICAL: 5773, VERTICAL_DATUM: 5171, VERTICAL_UNITS: 9001}
    assert _same_as_gdal(write_geotiff(tmp_path / "v.tif", keys)) == "EPSG:32633"


_NTF = {GEOGRAPHIC: 4807, ELLIPSOID: 7011}
_USER_DATUM = {
    GEOGRAPHIC: 32767,
    DATUM: 32767,
    ELLIPSOID: 32767,
    SEMI_MAJOR: 6378249.2,
    INV_FLATTENING: 293.466021293627,
}


@pytest.mark.parametrize(
    ("keys", "bound"),
    [
        ({MODEL: 1, PROJECTED: 27563}, False),  # the code alone: GDAL imports it, strips TOWGS84
        ({MODEL: 1, PROJECTED: 27563, **_NTF}, False),  # known datum: stripped
        ({MODEL: 1, PROJECTED: 27563, **_NTF, VERTICAL_UNITS: 9001}, True),  # kept
        ({MODEL: 1, PROJECTED: 27563, VERTICAL_UNITS: 9001}, False),
        ({MODEL: 2, **_USER_DATUM}, True),  # datum from its ellipsoid only: kept
        ({MODEL: 2, GEOGRAPHIC: 4807, VERTICAL_UNITS: 9001}, True),
    ],
    ids=[
        "pcs_only",
        "known_datum",
        "known_datum_vertical",
        "pcs_vertical",
        "user_datum",
        "geog_vertical",
    ],
)
@pytest.mark.parametrize("shift", [(-168.0, -60.0, 320.0), (-168.0, -60.0, 320.0, 1, 2, 3, 4)])
def test_towgs84_kept_where_gdal_keeps_it(
    tmp_path: Path, keys: dict[int, Any], bound: bool, shift: tuple[float, ...]
) -> None:
    ours = _same_as_gdal(write_geotiff(tmp_path / "t.tif", {**keys, TOWGS84: shift}))
    assert pyproj.CRS(ours).is_bound == bound


def test_null_towgs84_on_a_known_datum_gives_the_plain_crs(tmp_path: Path) -> None:
    # As async-tiff's USGS fixture: NAD83 with 0,0,0.
    keys = {MODEL: 2, GEOGRAPHIC: 4269, TOWGS84: (0.0, 0.0, 0.0)}
    assert _same_as_gdal(write_geotiff(tmp_path / "t.tif", keys)) == "EPSG:4269"


def test_raw_keys_read_from_the_header_bytes(tmp_path: Path) -> None:
    keys = {MODEL: 1, PROJECTED: 27563, TOWGS84: (1.0, 2.0, 3.0), GRID_ANGLE: 45.0, VERTICAL: 5773}
    raw = geo_keys_from_header(write_geotiff(tmp_path / "r.tif", keys).read_bytes())
    assert raw == {
        "geo_keys_complete": True,
        "geog_towgs84": (1.0, 2.0, 3.0),
        "proj_rectified_grid_angle": 45.0,
        "vertical": 5773,
    }
    data = (tmp_path / "r.tif").read_bytes()
    assert geo_keys_from_header(data[:40]) is None  # the directory lies past the bytes given
    assert geo_keys_from_header(b"not a tiff") is None


# ----------------------------------------------------------- projections from ProjCoordTrans


_BASE = {MODEL: 1, RASTER: 1, PROJECTED: 32767, PROJECTION: 32767, LINEAR: 9001, ANGULAR: 9102}

_PROJECTIONS = {
    "hotine_a": {
        GEOGRAPHIC: 6783,
        COORD_TRANS: 3,
        CENTER_LONG: -123.0,
        CENTER_LAT: 45.9166666666667,
        AZIMUTH: 295.0,
        GRID_ANGLE: 295.0,
        SCALE_CENTER: 1.0,
        FALSE_E: 7000000.0,
        FALSE_N: -3000000.0,
    },
    "hotine_b": {
        GEOGRAPHIC: 6318,
        COORD_TRANS: 9815,
        LINEAR: 9002,
        CENTER_LONG: -111.4,
        CENTER_LAT: 32.25,
        AZIMUTH: 45.0,
        GRID_ANGLE: 45.0,
        SCALE_CENTER: 1.00011,
        FALSE_E: 160000.0,
        FALSE_N: 800000.0,
    },
    "laborde": {
        GEOGRAPHIC: 4297,
        COORD_TRANS: 4,
        CENTER_LONG: 46.4372291666667,
        CENTER_LAT: -18.9,
        AZIMUTH: 18.9,
        SCALE_CENTER: 0.9995,
        FALSE_E: 400000.0,
        FALSE_N: 800000.0,
    },
    "tm_south_oriented": {
        GEOGRAPHIC: 4148,
        COORD_TRANS: 27,
        NAT_LONG: 15.0,
        NAT_LAT: 0.0,
        SCALE_NAT: 1.0,
        FALSE_E: 0.0,
        FALSE_N: 0.0,
    },
    "polar_a_south": {
        GEOGRAPHIC: 4764,
        COORD_TRANS: 15,
        NAT_LAT: -90.0,
        POLE_LONG: 180.0,
        SCALE_NAT: 0.994,
        FALSE_E: 5000000.0,
        FALSE_N: 1000000.0,
    },
    "polar_a_north": {
        GEOGRAPHIC: 4326,
        COORD_TRANS: 15,
        NAT_LAT: 90.0,
        POLE_LONG: 0.0,
        SCALE_NAT: 0.994,
        FALSE_E: 2000000.0,
        FALSE_N: 2000000.0,
    },
    "polar_b_north": {
        GEOGRAPHIC: 4326,
        COORD_TRANS: 15,
        NAT_LAT: 70.0,
        POLE_LONG: -45.0,
        SCALE_NAT: 1.0,
        FALSE_E: 0.0,
        FALSE_N: 0.0,
    },
    "equirectangular_on_a_sphere": {
        GEOGRAPHIC: 32767,
        DATUM: 32767,
        ELLIPSOID: 32767,
        GEOG_CITATION: "GCS Name = GCS_MARS|Datum = D_MARS|Primem = Reference_Meridian",
        SEMI_MAJOR: 3396190.0,
        SEMI_MINOR: 3396190.0,
        COORD_TRANS: 17,
        STD_PARALLEL1: 10.0,
        CENTER_LONG: 180.0,
        FALSE_E: 0.0,
        FALSE_N: 0.0,
    },
}


@pytest.mark.parametrize("name", list(_PROJECTIONS))
def test_projection_read_as_gdal_does(tmp_path: Path, name: str) -> None:
    _same_as_gdal(write_geotiff(tmp_path / f"{name}.tif", {**_BASE, **_PROJECTIONS[name]}))


_CORNER_CASES = {
    # libgeotiff's default rectified grid angle (90) when the file has none
    "hotine_without_grid_angle": {
        COORD_TRANS: 3,
        CENTER_LAT: 45.0,
        CENTER_LONG: -120.0,
        AZIMUTH: 30.0,
        SCALE_CENTER: 1.0,
    },
    # GDAL reads a Mercator origin latitude (scale 1) as variant B's standard parallel
    "mercator_origin_latitude": {COORD_TRANS: 7, NAT_LAT: 10.0, NAT_LONG: 5.0, SCALE_NAT: 1.0},
    "miller_origin_latitude": {COORD_TRANS: 20, CENTER_LAT: 10.0, CENTER_LONG: 5.0},  # dropped
    "equirectangular_origin_latitude": {
        COORD_TRANS: 17,
        CENTER_LAT: 10.0,
        CENTER_LONG: 5.0,
        STD_PARALLEL1: 20.0,
    },
}


@pytest.mark.parametrize("name", list(_CORNER_CASES))
def test_parameter_corner_cases_read_as_gdal_does(tmp_path: Path, name: str) -> None:
    keys = {**_BASE, GEOGRAPHIC: 4326, **_CORNER_CASES[name]}
    _same_as_gdal(write_geotiff(tmp_path / f"{name}.tif", keys))


def test_hotine_without_the_grid_angle_key_gives_no_crs(tmp_path: Path) -> None:
    # Without the header bytes the rectified grid angle (dropped by async-tiff) is unknown:
    # no CRS rather than a guessed orientation.
    path = write_geotiff(tmp_path / "h.tif", {**_BASE, **_PROJECTIONS["hotine_a"]})
    assert _ours(path, header=False) is None


@pytest.mark.parametrize("method", [2, 5, 6, 12345])
@pytest.mark.parametrize("citation", ["my grid", None])
def test_method_gdal_does_not_know_is_a_local_crs(
    tmp_path: Path, method: int, citation: str | None
) -> None:
    # Alaska, Rosenmund, spherical oblique Mercator, ...: GDAL reports a LOCAL_CS (map
    # coordinates in the linear unit, no geodetic meaning), and so do we.
    keys = {**_BASE, GEOGRAPHIC: 4326, COORD_TRANS: method, LINEAR: 9002}
    if citation is not None:
        keys[CITATION] = citation
    ours = _same_as_gdal(write_geotiff(tmp_path / "local.tif", keys))
    assert pyproj.CRS(ours).type_name == "Engineering CRS"
