"""CRS of a GeoTIFF from its GeoKey directory, read the way GDAL reads it.

One job: turn GeoKeys (async-tiff naming) into a CRS string with
:func:`crs_from_geo_keys`, building PROJJSON / PROJ strings for user-defined
keys. The reference is GDAL's GTiff driver as exposed by rasterio
(``dataset.crs``) with default configuration options.

CRS resolution, in order:

1. ``ProjectedCSTypeGeoKey`` (projected model) or ``GeographicTypeGeoKey``
   (geographic model) holding an EPSG code (1..32766) that pyproj knows:
   ``"EPSG:<code>"``.
2. An ESRI PE string in a citation key (``"ESRI PE String = <WKT>"``, which
   GDAL writes for projections GeoTIFF has no keys for): that WKT.
3. A user-defined (32767) CRS assembled from the keys: geographic CRS (EPSG
   code, or datum / ellipsoid / prime meridian / angular unit keys), projection
   (``ProjectionGeoKey`` EPSG conversion code, or ``ProjCoordTransGeoKey`` and
   its parameters) and linear unit. Returned as WKT2 (2019) from pyproj.

Whenever the keys cannot be mapped with certainty (unknown coordinate
transformation method, missing ellipsoid, user-defined model type without an
ESRI PE string, a Hotine Oblique Mercator whose rectified grid angle is not
known, geocentric models, ...) the CRS is ``None``: the caller must then warn
and carry on without a CRS. A CRS is never guessed. Vertical keys are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, TypeGuard

import pyproj
from pyproj.crs import CoordinateOperation, Datum, Ellipsoid, PrimeMeridian
from pyproj.database import get_units_map
from pyproj.exceptions import CRSError

from .crs import as_crs

__all__ = ["USER_DEFINED", "crs_from_geo_keys", "geo_keys_to_dict"]

#: GeoTIFF value for "user-defined" (the definition follows in other keys).
USER_DEFINED = 32767

_MODEL_PROJECTED = 1
_MODEL_GEOGRAPHIC = 2

_CITATION_KEYS = ("proj_citation", "citation", "geog_citation")
_ESRI_PE_PREFIX = "ESRI PE String = "

# Every GeoKey name that async-tiff's GeoKeyDirectory exposes, plus
# ``proj_rectified_grid_angle`` (ProjRectifiedGridAngleGeoKey, 3096), which
# async-tiff 0.7 drops but a caller of ``georeference_from_tags`` may supply.
_GEO_KEY_NAMES = (
    "model_type",
    "raster_type",
    "citation",
    "geographic_type",
    "geog_citation",
    "geog_geodetic_datum",
    "geog_prime_meridian",
    "geog_linear_units",
    "geog_linear_unit_size",
    "geog_angular_units",
    "geog_angular_unit_size",
    "geog_ellipsoid",
    "geog_semi_major_axis",
    "geog_semi_minor_axis",
    "geog_inv_flattening",
    "geog_azimuth_units",
    "geog_prime_meridian_long",
    "projected_type",
    "proj_citation",
    "projection",
    "proj_coord_trans",
    "proj_linear_units",
    "proj_linear_unit_size",
    "proj_std_parallel1",
    "proj_std_parallel2",
    "proj_nat_origin_long",
    "proj_nat_origin_lat",
    "proj_false_easting",
    "proj_false_northing",
    "proj_false_origin_long",
    "proj_false_origin_lat",
    "proj_false_origin_easting",
    "proj_false_origin_northing",
    "proj_center_long",
    "proj_center_lat",
    "proj_center_easting",
    "proj_center_northing",
    "proj_scale_at_nat_origin",
    "proj_scale_at_center",
    "proj_azimuth_angle",
    "proj_straight_vert_pole_long",
    "proj_rectified_grid_angle",
)


def geo_keys_to_dict(directory: Any) -> dict[str, Any]:
    """Copy an async-tiff ``GeoKeyDirectory`` (or any mapping) into a plain dict.

    Parameters
    ----------
    directory : async_tiff.GeoKeyDirectory or Mapping
        Anything with ``keys()`` and ``[key]``.

    Returns
    -------
    dict
        Key name (async-tiff naming, e.g. ``"proj_nat_origin_long"``) to value,
        without ``None`` values.
    """
    out: dict[str, Any] = {}
    for key in directory.keys():
        value = directory[key]
        if value is not None:
            out[str(key)] = value
    return out


def crs_from_geo_keys(keys: Mapping[str, Any]) -> str | None:
    """Map a GeoKey directory to a CRS string, or ``None`` when it cannot be done exactly.

    Parameters
    ----------
    keys : mapping
        GeoKeys by async-tiff name.

    Returns
    -------
    str or None
        ``"EPSG:<code>"``, WKT2 (2019), or ``None``.
    """
    model = _int(keys.get("model_type"))
    projected_type = _int(keys.get("projected_type"))
    geographic_type = _int(keys.get("geographic_type"))
    if model is None:
        if projected_type is not None or keys.get("proj_coord_trans") is not None:
            model = _MODEL_PROJECTED
        elif geographic_type is not None:
            model = _MODEL_GEOGRAPHIC

    if model == _MODEL_PROJECTED and _is_code(projected_type):
        if _known_epsg(projected_type):
            return f"EPSG:{projected_type}"
    elif model == _MODEL_GEOGRAPHIC and _is_code(geographic_type):
        if _known_epsg(geographic_type):
            return f"EPSG:{geographic_type}"

    pe = _esri_pe_string(keys)
    if pe is not None:
        try:
            return pyproj.CRS.from_wkt(pe).to_wkt()
        except CRSError:
            return None

    try:
        if model == _MODEL_PROJECTED:
            definition = _projected_crs_json(keys)
        elif model == _MODEL_GEOGRAPHIC:
            definition = _geographic_crs_json(keys)
        else:  # geocentric, user-defined without PE string, or unknown
            return None
        if definition is None:
            return None
        return pyproj.CRS.from_json_dict(definition).to_wkt()
    except (CRSError, ValueError, TypeError, KeyError):
        return None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _is_code(value: int | None) -> TypeGuard[int]:
    return value is not None and 0 < value < USER_DEFINED


@lru_cache(maxsize=512)
def _known_epsg(code: int) -> bool:
    try:
        as_crs(code)
    except CRSError:
        return False
    return True


def _esri_pe_string(keys: Mapping[str, Any]) -> str | None:
    for name in _CITATION_KEYS:
        citation = keys.get(name)
        if isinstance(citation, str) and _ESRI_PE_PREFIX in citation:
            return citation.split(_ESRI_PE_PREFIX, 1)[1].strip().rstrip("|")
    return None


def _citation_field(keys: Mapping[str, Any], field: str) -> str | None:
    """Read ``"<field> = value"`` from GDAL's structured GeogCitation (``a = b|c = d|``)."""
    citation = keys.get("geog_citation")
    if not isinstance(citation, str):
        return None
    for part in citation.split("|"):
        name, sep, value = part.partition("=")
        if sep and name.strip() == field and value.strip():
            return value.strip()
    return None


# Units ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _epsg_units() -> dict[int, tuple[str, str, float]]:
    units = get_units_map(auth_name="EPSG")
    return {
        int(u.code): (u.name, u.category, float(u.conv_factor))
        for u in units.values()
        if u.code.isdigit()
    }


def _unit(
    keys: Mapping[str, Any], code_key: str, size_key: str, category: str, default: int
) -> tuple[str, float] | None:
    """(name, factor to SI) of a linear/angular unit key; ``None`` when unknown."""
    code = _int(keys.get(code_key))
    if code is None:
        code = default
    if code == USER_DEFINED:
        size = keys.get(size_key)
        return None if size is None or float(size) <= 0 else ("unknown", float(size))
    entry = _epsg_units().get(code)
    if entry is None or entry[1] != category:
        return None
    return entry[0], entry[2]


def _unit_json(name: str, factor: float, kind: str) -> dict[str, Any] | str:
    if kind == "LinearUnit" and factor == 1.0:
        return "metre"
    return {"type": kind, "name": name, "conversion_factor": factor}


# Geographic CRS ------------------------------------------------------------------


def _geographic_crs_json(keys: Mapping[str, Any]) -> dict[str, Any] | None:
    """PROJJSON of the geographic (base) CRS described by the keys."""
    geographic_type = _int(keys.get("geographic_type"))
    if _is_code(geographic_type):
        if not _known_epsg(geographic_type):
            return None
        base = as_crs(geographic_type)
        if not base.is_geographic:
            return None
        definition = base.to_json_dict()
        definition.pop("$schema", None)
        return definition

    angular = _unit(keys, "geog_angular_units", "geog_angular_unit_size", "angular", 9102)
    if angular is None:
        return None
    datum = _datum_json(keys, angular[1])
    if datum is None:
        return None
    datum_member = "datum_ensemble" if datum.get("type") == "DatumEnsemble" else "datum"
    unit: dict[str, Any] | str = {
        "type": "AngularUnit",
        "name": angular[0],
        "conversion_factor": angular[1],
    }
    if angular[0].startswith("degree"):
        unit = "degree"
    return {
        "type": "GeographicCRS",
        "name": _citation_field(keys, "GCS Name") or "unknown",
        datum_member: datum,
        "coordinate_system": {
            "subtype": "ellipsoidal",
            "axis": [
                {"name": "Latitude", "abbreviation": "lat", "direction": "north", "unit": unit},
                {"name": "Longitude", "abbreviation": "lon", "direction": "east", "unit": unit},
            ],
        },
    }


def _datum_json(keys: Mapping[str, Any], angular_factor: float) -> dict[str, Any] | None:
    prime_meridian = _prime_meridian_json(keys, angular_factor)
    if prime_meridian is None:
        return None
    datum_code = _int(keys.get("geog_geodetic_datum"))
    if _is_code(datum_code):
        try:
            datum = Datum.from_epsg(datum_code).to_json_dict()
        except CRSError:
            return None
        datum.pop("$schema", None)
        if datum.get("type") == "DatumEnsemble":
            # An ensemble (e.g. EPSG:6326, WGS 84) has no prime meridian of its own:
            # only usable with Greenwich.
            greenwich = prime_meridian.get("name") == "Greenwich" or (
                prime_meridian.get("longitude") in (0, 0.0)
            )
            return datum if greenwich else None
        if datum.get("type") != "GeodeticReferenceFrame":
            return None
        datum["prime_meridian"] = prime_meridian
        return datum

    ellipsoid = _ellipsoid_json(keys)
    if ellipsoid is None:
        return None
    return {
        "type": "GeodeticReferenceFrame",
        "name": _citation_field(keys, "Datum") or "unknown",
        "ellipsoid": ellipsoid,
        "prime_meridian": prime_meridian,
    }


def _ellipsoid_json(keys: Mapping[str, Any]) -> dict[str, Any] | None:
    code = _int(keys.get("geog_ellipsoid"))
    if _is_code(code):
        try:
            ellipsoid = Ellipsoid.from_epsg(code).to_json_dict()
        except CRSError:
            return None
        ellipsoid.pop("$schema", None)
        return ellipsoid
    linear = _unit(keys, "geog_linear_units", "geog_linear_unit_size", "linear", 9001)
    semi_major = keys.get("geog_semi_major_axis")
    if linear is None or semi_major is None or float(semi_major) <= 0:
        return None
    to_metre = linear[1]
    name = _citation_field(keys, "Ellipsoid") or "unknown"
    a = float(semi_major) * to_metre
    inv_flattening = keys.get("geog_inv_flattening")
    semi_minor = keys.get("geog_semi_minor_axis")
    if inv_flattening is not None and float(inv_flattening) != 0.0:
        return {"name": name, "semi_major_axis": a, "inverse_flattening": float(inv_flattening)}
    if semi_minor is not None and float(semi_minor) != float(semi_major):
        return {"name": name, "semi_major_axis": a, "semi_minor_axis": float(semi_minor) * to_metre}
    # Inverse flattening 0, semi-minor == semi-major, or neither: a sphere (as GDAL reads it).
    return {"name": name, "radius": a}


def _prime_meridian_json(keys: Mapping[str, Any], angular_factor: float) -> dict[str, Any] | None:
    code = _int(keys.get("geog_prime_meridian"))
    if _is_code(code):
        try:
            pm = PrimeMeridian.from_epsg(code).to_json_dict()
        except CRSError:
            return None
        pm.pop("$schema", None)
        return pm
    longitude = float(keys.get("geog_prime_meridian_long") or 0.0)
    degrees = _to_degrees(longitude, angular_factor)
    if degrees == 0.0:
        return {"name": "Greenwich", "longitude": 0}
    return {"name": _citation_field(keys, "Primem") or "unknown", "longitude": degrees}


def _to_degrees(value: float, radians_per_unit: float) -> float:
    if math.isclose(radians_per_unit, math.pi / 180.0, rel_tol=1e-12):
        return value
    return math.degrees(value * radians_per_unit)


# Projected CRS -------------------------------------------------------------------


def _projected_crs_json(keys: Mapping[str, Any]) -> dict[str, Any] | None:
    base = _geographic_crs_json(keys)
    linear = _unit(keys, "proj_linear_units", "proj_linear_unit_size", "linear", 9001)
    if base is None or linear is None:
        return None
    conversion = _conversion_json(keys, linear[1])
    if conversion is None:
        return None
    unit = _unit_json(linear[0], linear[1], "LinearUnit")
    name = keys.get("citation") or keys.get("proj_citation") or "unknown"
    return {
        "type": "ProjectedCRS",
        "name": name if isinstance(name, str) else "unknown",
        "base_crs": base,
        "conversion": conversion,
        "coordinate_system": {
            "subtype": "Cartesian",
            "axis": [
                {"name": "Easting", "abbreviation": "E", "direction": "east", "unit": unit},
                {"name": "Northing", "abbreviation": "N", "direction": "north", "unit": unit},
            ],
        },
    }


def _conversion_json(keys: Mapping[str, Any], metres_per_unit: float) -> dict[str, Any] | None:
    projection = _int(keys.get("projection"))
    if _is_code(projection):
        try:
            conversion = CoordinateOperation.from_epsg(projection).to_json_dict()
        except CRSError:
            return None
        conversion.pop("$schema", None)
        return conversion if conversion.get("type") == "Conversion" else None

    proj_string = _proj_string(keys, metres_per_unit)
    if proj_string is None:
        return None
    crs = pyproj.CRS(f"{proj_string} +ellps=WGS84 +units=m +no_defs +type=crs")
    definition = crs.to_json_dict().get("conversion")
    if not isinstance(definition, dict):
        return None
    definition["name"] = "unknown"
    return definition


# Over 100 lines: one flat branch per GeoTIFF method, like libgeotiff's table; split up,
# every piece would need the same parameter readers and key synonyms.
def _proj_string(keys: Mapping[str, Any], metres_per_unit: float) -> str | None:
    """PROJ string of the projection method and its parameters (no ellipsoid, no units).

    Parameters are read like libgeotiff's ``GTIFFetchProjParms``: each one from
    its preferred key, falling back to the synonyms GeoTIFF writers use,
    angles in ``GeogAngularUnits``, lengths in ``ProjLinearUnits``.
    """
    method = _int(keys.get("proj_coord_trans"))
    if method is None:
        return None
    angular = _unit(keys, "geog_angular_units", "geog_angular_unit_size", "angular", 9102)
    if angular is None:
        return None
    azimuth_factor = angular[1]
    if keys.get("geog_azimuth_units") is not None:
        azimuth_unit = _unit(keys, "geog_azimuth_units", "geog_angular_unit_size", "angular", 9102)
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
        return _to_degrees(first(*names) or 0.0, angular[1])

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
        if angle(*nat_lat) != 0.0:
            return None
        if keys.get("proj_std_parallel1") is not None:
            return (
                f"+proj=merc +lat_ts={angle('proj_std_parallel1')!r} "
                f"+lon_0={angle(*nat_lon)!r} {false_en}"
            )
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
        if method == 20 and lat0 != 0.0:
            return None
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
        if lat0 != 0.0:
            return None
        return (
            f"+proj=eqc +lat_ts={angle('proj_std_parallel1')!r} +lat_0=0 "
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
        azimuth = keys.get("proj_azimuth_angle")
        if gamma is None or azimuth is None:
            # async-tiff does not expose ProjRectifiedGridAngleGeoKey: without it the
            # grid orientation is unknown, and guessing could give a wrong CRS.
            return None
        alpha = _to_degrees(float(azimuth), azimuth_factor)
        gamma_deg = _to_degrees(float(gamma), azimuth_factor)
        variant = " +no_uoff" if method == 3 else ""
        return (
            f"+proj=omerc{variant} +lat_0={angle(*ctr_lat)!r} +lonc={angle(*ctr_lon)!r} "
            f"+alpha={alpha!r} +gamma={gamma_deg!r} +k_0={k_ctr!r} {false_en}"
        )
    # 2 (Alaska), 4-6 (Laborde, Rosenmund, spherical oblique Mercator),
    # 27 (south-oriented TM) and anything unknown.
    return None
