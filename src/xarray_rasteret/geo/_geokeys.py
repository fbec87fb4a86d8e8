"""CRS of a GeoTIFF from its GeoKey directory, read the way GDAL reads it.

One job: turn GeoKeys (async-tiff naming) into a CRS string with
:func:`crs_from_geo_keys`, building PROJJSON / PROJ strings for user-defined
keys. The reference is GDAL's GTiff driver as exposed by rasterio
(``dataset.crs``) with default configuration options.

CRS resolution, in order:

1. ``ProjectedCSTypeGeoKey`` (projected model) or ``GeographicTypeGeoKey``
   (geographic model) holding an EPSG code (1..32766) that pyproj knows:
   ``"EPSG:<code>"``, unless other keys override part of it as libgeotiff
   lets them (:mod:`._geokey_overrides`: an explicit ellipsoid, another
   ``ProjLinearUnits``, a GeographicType under a PCS, ``ProjCoordTrans`` keys
   beside a PCS); then the overridden CRS as WKT2.
2. An ESRI PE string in a citation key (``"ESRI PE String = <WKT>"``, which
   GDAL writes for projections GeoTIFF has no keys for): that WKT.
3. A user-defined (32767) CRS assembled from the keys: geographic CRS (EPSG
   code, or datum / ellipsoid / prime meridian / angular unit keys), projection
   (``ProjectionGeoKey`` EPSG conversion code, or ``ProjCoordTransGeoKey`` and
   its parameters, :mod:`._geokey_methods`) and linear unit. Returned as WKT2
   (2019) from pyproj. A method GDAL has no mapping for gives GDAL's local
   (engineering) CRS.

``GeogTOWGS84GeoKey`` makes a BoundCRS where GDAL keeps it. Vertical keys are
left out (GDAL reports the horizontal CRS unless ``GTIFF_REPORT_COMPD_CS``).
Whenever the keys cannot be mapped with certainty (missing ellipsoid,
user-defined model type without an ESRI PE string, a Hotine Oblique Mercator
whose rectified grid angle async-tiff dropped, geocentric models, ...) the CRS
is ``None``: the caller must then warn and carry on without a CRS. A CRS is
never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import pyproj
from pyproj.crs import CoordinateOperation, Datum, Ellipsoid, PrimeMeridian
from pyproj.exceptions import CRSError

from . import _geokey_methods as methods
from ._geokey_overrides import (
    ellipsoid_override,
    is_dynamic,
    linear_unit_override,
    with_towgs84,
)
from ._geokey_units import USER_DEFINED, as_int, is_code, to_degrees, unit_json
from ._geokey_units import unit as key_unit
from .crs import as_crs

__all__ = ["USER_DEFINED", "crs_from_geo_keys", "geo_keys_to_dict"]

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
    crs = _horizontal_crs(keys)
    return crs if crs is None else with_towgs84(crs, keys)


def _horizontal_crs(keys: Mapping[str, Any]) -> str | None:
    model = as_int(keys.get("model_type"))
    projected_type = as_int(keys.get("projected_type"))
    geographic_type = as_int(keys.get("geographic_type"))
    if model is None:
        if projected_type is not None or keys.get("proj_coord_trans") is not None:
            model = _MODEL_PROJECTED
        elif geographic_type is not None:
            model = _MODEL_GEOGRAPHIC

    if model == _MODEL_PROJECTED and is_code(projected_type):
        if _known_epsg(projected_type):
            return _epsg_with_overrides(projected_type, keys)
    elif model == _MODEL_GEOGRAPHIC and is_code(geographic_type):
        if _known_epsg(geographic_type):
            return _epsg_with_overrides(geographic_type, keys)

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


def _epsg_with_overrides(code: int, keys: Mapping[str, Any]) -> str:
    """``"EPSG:<code>"``, or WKT of that CRS with the parts the keys override."""
    crs = as_crs(code)
    definition = crs.to_json_dict()
    definition.pop("$schema", None)
    if crs.is_projected:
        if keys.get("proj_coord_trans") is not None:
            wkt = _pcs_from_keys(crs, keys)
            # Keys that only restate the code (libgeotiff's "all geokeys" files) keep it.
            return f"EPSG:{code}" if wkt is None or pyproj.CRS(wkt) == crs else wkt
        factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        changed = linear_unit_override(keys, definition, factor)
        base = (changed or definition).get("base_crs")
        new_base = _base_override(keys, base) if isinstance(base, dict) else None
        if new_base is not None:
            changed = dict(changed or definition)
            changed.pop("id", None)
            changed["base_crs"] = new_base
    elif crs.is_geographic and not is_dynamic(definition):
        # GDAL keeps a dynamic geographic CRS (WGS 84's ensemble) as its EPSG code says.
        changed = ellipsoid_override(keys, definition)
    else:
        changed = None
    if changed is None:
        return f"EPSG:{code}"
    return pyproj.CRS.from_json_dict(changed).to_wkt()


def _base_override(keys: Mapping[str, Any], base: dict[str, Any]) -> dict[str, Any] | None:
    """The geographic CRS a ProjectedCSType's keys put under it, if not its own.

    libgeotiff lets ``GeographicTypeGeoKey`` replace the GCS the PCS implies (and
    GDAL follows: EPSG:32633 with GeographicType 4230 is UTM 33N on ED50), then
    the explicit ellipsoid keys override that.
    """
    geographic = as_int(keys.get("geographic_type"))
    own = base.get("id", {}).get("code")
    if is_code(geographic) and geographic != own and _known_epsg(geographic):
        other = as_crs(geographic)
        if not other.is_geographic:
            return None
        replaced = other.to_json_dict()
        replaced.pop("$schema", None)
        return ellipsoid_override(keys, replaced) or replaced
    return ellipsoid_override(keys, base)


def _pcs_from_keys(crs: pyproj.CRS, keys: Mapping[str, Any]) -> str | None:
    """A ProjectedCSType with its own ProjCoordTrans keys, read as libgeotiff and GDAL do.

    With ``ProjCoordTransGeoKey`` present, libgeotiff takes every projection
    parameter from the keys (absent ones get its defaults, not the EPSG values)
    and GDAL builds the CRS from them; the units and the geographic CRS the keys
    do not give come from the PCS.
    """
    filled = dict(keys)
    filled["projected_type"] = USER_DEFINED
    filled.pop("projection", None)  # the keys' method wins over a conversion code
    base_code = crs.geodetic_crs.to_epsg() if crs.geodetic_crs is not None else None
    if filled.get("geographic_type") is None and base_code is not None:
        filled["geographic_type"] = base_code
    unit = crs.axis_info[0].unit_code if crs.axis_info else None
    if filled.get("proj_linear_units") is None and unit and unit.isdigit():
        filled["proj_linear_units"] = int(unit)
    definition = _projected_crs_json(filled)
    return None if definition is None else pyproj.CRS.from_json_dict(definition).to_wkt()


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


# Geographic CRS ------------------------------------------------------------------


def _geographic_crs_json(keys: Mapping[str, Any]) -> dict[str, Any] | None:
    """PROJJSON of the geographic (base) CRS described by the keys."""
    geographic_type = as_int(keys.get("geographic_type"))
    if is_code(geographic_type):
        if not _known_epsg(geographic_type):
            return None
        base = as_crs(geographic_type)
        if not base.is_geographic:
            return None
        definition = base.to_json_dict()
        definition.pop("$schema", None)
        return ellipsoid_override(keys, definition) or definition

    angular = key_unit(keys, "geog_angular_units", "geog_angular_unit_size", "angular", 9102)
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
    datum_code = as_int(keys.get("geog_geodetic_datum"))
    if is_code(datum_code):
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
    code = as_int(keys.get("geog_ellipsoid"))
    if is_code(code):
        try:
            ellipsoid = Ellipsoid.from_epsg(code).to_json_dict()
        except CRSError:
            return None
        ellipsoid.pop("$schema", None)
        return ellipsoid
    linear = key_unit(keys, "geog_linear_units", "geog_linear_unit_size", "linear", 9001)
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
    code = as_int(keys.get("geog_prime_meridian"))
    if is_code(code):
        try:
            pm = PrimeMeridian.from_epsg(code).to_json_dict()
        except CRSError:
            return None
        pm.pop("$schema", None)
        return pm
    longitude = float(keys.get("geog_prime_meridian_long") or 0.0)
    degrees = to_degrees(longitude, angular_factor)
    # GDAL names the meridian after the citation's "Primem" (PROJ compares the names).
    name = _citation_field(keys, "Primem")
    if degrees == 0.0:
        return {"name": name or "Greenwich", "longitude": 0}
    return {"name": name or "unknown", "longitude": degrees}


# Projected CRS -------------------------------------------------------------------


# ProjCoordTrans codes GDAL maps to a projection; for any other code it reports a local
# (engineering) CRS named after the citation.
_GDAL_METHODS = frozenset({1, 3, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22})
_GDAL_METHODS |= {23, 24, 25, 26, 27, 28, 9815}


def _projected_crs_json(keys: Mapping[str, Any]) -> dict[str, Any] | None:
    base = _geographic_crs_json(keys)
    linear = key_unit(keys, "proj_linear_units", "proj_linear_unit_size", "linear", 9001)
    method = as_int(keys.get("proj_coord_trans"))
    if method is not None and method not in _GDAL_METHODS:
        return _local_crs_json(keys)
    if base is None or linear is None:
        return None
    found = _conversion_json(keys, linear[1])
    if found is None:
        return None
    conversion, axes = found
    if _is_sphere(base):
        _spherical_method(conversion)
    unit = unit_json(linear[0], linear[1], "LinearUnit")
    name = keys.get("citation") or keys.get("proj_citation") or "unknown"
    names = axes or (("Easting", "E", "east"), ("Northing", "N", "north"))
    return {
        "type": "ProjectedCRS",
        "name": name if isinstance(name, str) else "unknown",
        "base_crs": base,
        "conversion": conversion,
        "coordinate_system": {
            "subtype": "Cartesian",
            "axis": [
                {"name": n, "abbreviation": a, "direction": d, "unit": unit} for n, a, d in names
            ],
        },
    }


def _local_crs_json(keys: Mapping[str, Any]) -> dict[str, Any]:
    """GDAL's LOCAL_CS for a projection method it does not know (Alaska, Rosenmund, ...).

    GDAL clears the CRS and sets a local one named after the citation, in metres
    whatever ``ProjLinearUnits`` says; we report the same.
    """
    unit = "metre"
    name = keys.get("citation") or keys.get("proj_citation")
    return {
        "type": "EngineeringCRS",
        "name": name.rstrip("|") if isinstance(name, str) else "unnamed",
        "datum": {"type": "EngineeringDatum", "name": "Unknown engineering datum"},
        "coordinate_system": {
            "subtype": "Cartesian",
            "axis": [
                {"name": "Easting", "abbreviation": "E", "direction": "east", "unit": unit},
                {"name": "Northing", "abbreviation": "N", "direction": "north", "unit": unit},
            ],
        },
    }


# GDAL (through PROJ's reading of its WKT1) names these methods' spherical variants
# when the ellipsoid is a sphere; PROJ's CRS equality tells the two apart.
_SPHERICAL_METHODS = {
    1028: (1029, "Equidistant Cylindrical (Spherical)"),
    9835: (9834, "Lambert Cylindrical Equal Area (Spherical)"),
    9820: (1027, "Lambert Azimuthal Equal Area (Spherical)"),
}


def _is_sphere(geographic: Mapping[str, Any]) -> bool:
    datum = geographic.get("datum") or geographic.get("datum_ensemble") or {}
    ellipsoid = datum.get("ellipsoid", {})
    if "radius" in ellipsoid:
        return True
    return bool(
        ellipsoid.get("semi_minor_axis") is not None
        and ellipsoid.get("semi_minor_axis") == ellipsoid.get("semi_major_axis")
    )


def _spherical_method(conversion: dict[str, Any]) -> None:
    method = conversion.get("method", {})
    code = method.get("id", {}).get("code")
    if code in _SPHERICAL_METHODS:
        new_code, name = _SPHERICAL_METHODS[code]
        conversion["method"] = {"name": name, "id": {"authority": "EPSG", "code": new_code}}


def _conversion_json(
    keys: Mapping[str, Any], metres_per_unit: float
) -> tuple[dict[str, Any], methods.Axes | None] | None:
    """The conversion (PROJJSON) and, where GDAL gives other than east/north, its axes."""
    projection = as_int(keys.get("projection"))
    if is_code(projection):
        try:
            conversion = CoordinateOperation.from_epsg(projection).to_json_dict()
        except CRSError:
            return None
        conversion.pop("$schema", None)
        return (conversion, None) if conversion.get("type") == "Conversion" else None

    proj_string = methods.proj_string(keys, metres_per_unit)
    if proj_string is None:
        return None
    crs = pyproj.CRS(f"{proj_string} +ellps=WGS84 +units=m +no_defs +type=crs")
    definition = crs.to_json_dict().get("conversion")
    if not isinstance(definition, dict):
        return None
    definition["name"] = "unknown"
    return definition, methods.axes(keys, proj_string)
