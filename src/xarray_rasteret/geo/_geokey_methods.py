"""Projection methods of user-defined GeoTIFF CRSs (``ProjCoordTransGeoKey``), as PROJ strings.

One job: map a coordinate transformation code and its parameter keys to the
PROJ string of that conversion, reading parameters like libgeotiff's
``GTIFFetchProjParms`` (preferred key, then the synonyms writers use), and
say which axes GDAL gives the result (:func:`axes`), where those are not
easting/northing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ._geokey_units import as_int, to_degrees, unit

__all__ = ["axes", "proj_string"]

#: (name, abbreviation, direction) of the two axes, where GDAL does not use E/N.
Axes = tuple[tuple[str, str, str], tuple[str, str, str]]

_SOUTH_ORIENTED: Axes = (("Westing", "W", "west"), ("Southing", "S", "south"))
# GDAL's SetPS: at the north pole both axes point south (along 90°E / 180°), at the
# south pole both point north, as in EPSG's polar CRSs (e.g. 3413, 3031 variants).
_NORTH_POLE: Axes = (("Easting", "E", "south"), ("Northing", "N", "south"))
_SOUTH_POLE: Axes = (("Easting", "E", "north"), ("Northing", "N", "north"))


def axes(keys: Mapping[str, Any], proj: str) -> Axes | None:
    """The axes GDAL gives a user-defined projected CRS, or None for east/north.

    Parameters
    ----------
    keys : mapping
        The GeoKeys.
    proj : str
        The conversion's PROJ string from :func:`proj_string`.
    """
    method = as_int(keys.get("proj_coord_trans"))
    if method == 27:
        return _SOUTH_ORIENTED
    if method == 15 and "+proj=stere" in proj:
        if "+lat_0=90.0 " in proj:
            return _NORTH_POLE
        if "+lat_0=-90.0 " in proj:
            return _SOUTH_POLE
    return None


# Over 100 lines: one flat branch per GeoTIFF method, like libgeotiff's table; split up,
# every piece would need the same parameter readers and key synonyms.
def proj_string(keys: Mapping[str, Any], metres_per_unit: float) -> str | None:
    """PROJ string of the projection method and its parameters (no ellipsoid, no units).

    Parameters are read like libgeotiff's ``GTIFFetchProjParms``: each one from
    its preferred key, falling back to the synonyms GeoTIFF writers use,
    angles in ``GeogAngularUnits``, lengths in ``ProjLinearUnits``.
    """
    method = as_int(keys.get("proj_coord_trans"))
    if method is None:
        return None
    angular = unit(keys, "geog_angular_units", "geog_angular_unit_size", "angular", 9102)
    if angular is None:
        return None
    azimuth_factor = angular[1]
    if keys.get("geog_azimuth_units") is not None:
        azimuth_unit = unit(keys, "geog_azimuth_units", "geog_angular_unit_size", "angular", 9102)
        if azimuth_unit is None:
            return None
        azimuth_factor = azimuth_unit[1]

    def first(*names: str, default: float | None = 0.0) -> float | None:
        for name in names:
            value = keys.get(name)
            if value is not None:
                return float(value)
        return default

    def angle(*names: str) -> float:
        return to_degrees(first(*names) or 0.0, angular[1])

    def length(*names: str) -> float:
        return (first(*names) or 0.0) * metres_per_unit

    nat_lat = ("proj_nat_origin_lat", "proj_false_origin_lat", "proj_center_lat")
    nat_lon = ("proj_nat_origin_long", "proj_false_origin_long", "proj_center_long")
    ctr_lat = ("proj_center_lat", "proj_nat_origin_lat", "proj_false_origin_lat")
    ctr_lon = ("proj_center_long", "proj_nat_origin_long", "proj_false_origin_long")
    fo_lat = ("proj_false_origin_lat", "proj_nat_origin_lat", "proj_center_lat")
    fo_lon = ("proj_false_origin_long", "proj_nat_origin_long", "proj_center_long")
    fe = ("proj_false_easting", "proj_center_easting", "proj_false_origin_easting")
    fn = ("proj_false_northing", "proj_center_northing", "proj_false_origin_northing")
    fo_e = ("proj_false_origin_easting", "proj_false_easting", "proj_center_easting")
    fo_n = ("proj_false_origin_northing", "proj_false_northing", "proj_center_northing")
    k_nat = first("proj_scale_at_nat_origin", "proj_scale_at_center", default=1.0)
    k_ctr = first("proj_scale_at_center", "proj_scale_at_nat_origin", default=1.0)
    false_en = f"+x_0={length(*fe)!r} +y_0={length(*fn)!r}"

    if method == 1:  # Transverse Mercator
        return (
            f"+proj=tmerc +lat_0={angle(*nat_lat)!r} +lon_0={angle(*nat_lon)!r} "
            f"+k_0={k_nat!r} {false_en}"
        )
    if method == 7:  # Mercator: 2SP when a standard parallel is given (as GDAL)
        lat0 = angle(*nat_lat)
        if keys.get("proj_std_parallel1") is not None:
            if lat0 != 0.0:
                return None
            return (
                f"+proj=merc +lat_ts={angle('proj_std_parallel1')!r} "
                f"+lon_0={angle(*nat_lon)!r} {false_en}"
            )
        if lat0 != 0.0:
            # GDAL's SetMercator turns an origin latitude with scale 1 into variant B
            # with that latitude as the standard parallel; with another scale, no rule.
            if k_nat != 1.0:
                return None
            return f"+proj=merc +lat_ts={lat0!r} +lon_0={angle(*nat_lon)!r} {false_en}"
        return f"+proj=merc +lon_0={angle(*nat_lon)!r} +k_0={k_nat!r} {false_en}"
    if method in (8, 11, 13):  # LCC 2SP, Albers, Equidistant Conic
        name = {8: "lcc", 11: "aea", 13: "eqdc"}[method]
        if method == 8:
            lat0, lon0 = angle(*fo_lat), angle(*fo_lon)
        else:  # GDAL writes the natural-origin keys for these two
            lat0 = angle("proj_nat_origin_lat", "proj_false_origin_lat", "proj_center_lat")
            lon0 = angle("proj_nat_origin_long", "proj_false_origin_long", "proj_center_long")
        east = length(*fo_e) if method == 8 else length(*fe)
        north = length(*fo_n) if method == 8 else length(*fn)
        return (
            f"+proj={name} +lat_1={angle('proj_std_parallel1')!r} "
            f"+lat_2={angle('proj_std_parallel2')!r} +lat_0={lat0!r} +lon_0={lon0!r} "
            f"+x_0={east!r} +y_0={north!r}"
        )
    if method == 9:  # LCC 1SP
        lat0 = angle(*nat_lat)
        return (
            f"+proj=lcc +lat_1={lat0!r} +lat_0={lat0!r} +lon_0={angle(*nat_lon)!r} "
            f"+k_0={k_nat!r} {false_en}"
        )
    if method in (10, 12, 19, 20, 21, 26):  # centre-based azimuthal / misc
        name = {10: "laea", 12: "aeqd", 19: "gnom", 20: "mill", 21: "ortho", 26: "nzmg"}[method]
        lat0 = angle(*(nat_lat if method == 26 else ctr_lat))
        lon0 = angle(*(nat_lon if method == 26 else ctr_lon))
        if method == 20:
            lat0 = 0.0  # GDAL's Miller has no origin latitude: it drops the key
        return f"+proj={name} +lat_0={lat0!r} +lon_0={lon0!r} {false_en}"
    if method == 14:  # Stereographic (GDAL: "Stereographic")
        return (
            f"+proj=stere +lat_0={angle(*ctr_lat)!r} +lon_0={angle(*ctr_lon)!r} "
            f"+k_0={k_nat!r} {false_en}"
        )
    if method == 15:  # Polar Stereographic, read as GDAL's SetPS
        lat = angle("proj_nat_origin_lat", "proj_std_parallel1", "proj_center_lat")
        lon = angle("proj_straight_vert_pole_long", "proj_nat_origin_long", "proj_center_long")
        pole = math.copysign(90.0, lat)
        if abs(abs(lat) - 90.0) < 1e-8:
            return f"+proj=stere +lat_0={pole!r} +lon_0={lon!r} +k_0={k_nat!r} {false_en}"
        if k_nat != 1.0 or lat == 0.0:
            return None  # variant A away from the pole: not meaningful
        return f"+proj=stere +lat_0={pole!r} +lat_ts={lat!r} +lon_0={lon!r} {false_en}"
    if method == 16:  # Oblique Stereographic
        return (
            f"+proj=sterea +lat_0={angle(*nat_lat)!r} +lon_0={angle(*nat_lon)!r} "
            f"+k_0={k_nat!r} {false_en}"
        )
    if method == 17:  # Equirectangular / Equidistant Cylindrical
        lat0 = angle(*ctr_lat)
        return (
            f"+proj=eqc +lat_ts={angle('proj_std_parallel1')!r} +lat_0={lat0!r} "
            f"+lon_0={angle(*ctr_lon)!r} {false_en}"
        )
    if method in (18, 22):  # Cassini-Soldner, Polyconic
        name = {18: "cass", 22: "poly"}[method]
        return f"+proj={name} +lat_0={angle(*nat_lat)!r} +lon_0={angle(*nat_lon)!r} {false_en}"
    if method in (23, 24, 25):  # Robinson, Sinusoidal, Van der Grinten
        name = {23: "robin", 24: "sinu", 25: "vandg"}[method]
        return f"+proj={name} +lon_0={angle(*ctr_lon)!r} {false_en}"
    if method == 28:  # Cylindrical Equal Area
        return (
            f"+proj=cea +lat_ts={angle('proj_std_parallel1')!r} "
            f"+lon_0={angle(*nat_lon)!r} {false_en}"
        )
    if method in (3, 9815):  # Hotine Oblique Mercator variant A / B
        gamma = keys.get("proj_rectified_grid_angle")
        if gamma is None and keys.get("geo_keys_complete"):
            gamma = 90.0  # libgeotiff's default when the key is absent
        azimuth = keys.get("proj_azimuth_angle")
        if gamma is None or azimuth is None:
            # async-tiff drops ProjRectifiedGridAngleGeoKey: unless the whole directory was
            # read (geo_keys_complete), the grid orientation is unknown, and a guess could
            # give a wrong CRS.
            return None
        alpha = to_degrees(float(azimuth), azimuth_factor)
        gamma_deg = to_degrees(float(gamma), azimuth_factor)
        variant = " +no_uoff" if method == 3 else ""
        return (
            f"+proj=omerc{variant} +lat_0={angle(*ctr_lat)!r} +lonc={angle(*ctr_lon)!r} "
            f"+alpha={alpha!r} +gamma={gamma_deg!r} +k_0={k_ctr!r} {false_en}"
        )
    if method == 4:  # Laborde oblique Mercator (libgeotiff reads it like Hotine, no grid angle)
        azimuth = first("proj_azimuth_angle")
        return (
            f"+proj=labrd +lat_0={angle(*nat_lat)!r} +lon_0={angle(*nat_lon)!r} "
            f"+azi={to_degrees(azimuth or 0.0, azimuth_factor)!r} +k_0={k_nat!r} {false_en}"
        )
    if method == 27:  # Transverse Mercator (South Orientated): westing/southing axes
        return (
            f"+proj=tmerc +axis=wsu +lat_0={angle(*nat_lat)!r} +lon_0={angle(*nat_lon)!r} "
            f"+k_0={k_nat!r} {false_en}"
        )
    # 2 (Alaska), 5-6 (Rosenmund, spherical oblique Mercator) and anything unknown:
    # GDAL has no mapping for them either.
    return None
