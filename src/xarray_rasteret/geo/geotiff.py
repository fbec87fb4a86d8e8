"""Georeferencing of a GeoTIFF image, read the way GDAL reads it.

The affine transform comes from ``ModelPixelScale`` + ``ModelTiepoint`` or from
``ModelTransformation``; the CRS from the GeoKey directory. The reference is
GDAL's GTiff driver as exposed by rasterio (``dataset.transform`` and
``dataset.crs``) with default configuration options.

The CRS is built by :func:`~xarray_rasteret.geo._geokeys.crs_from_geo_keys`
(see that module for the resolution rules, re-exported here); it is ``None``
when the keys cannot be mapped with certainty, and the caller must then warn
and carry on without a CRS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from affine import Affine

from ..errors import UnsupportedTiffError
from ._geokeys import crs_from_geo_keys, geo_keys_to_dict
from ._rawkeys import geo_keys_from_header

__all__ = [
    "Georeference",
    "crs_from_geo_keys",
    "geo_keys_from_header",
    "geo_keys_to_dict",
    "georeference_from_ifd",
    "georeference_from_tags",
    "require_north_up",
]

_RASTER_PIXEL_IS_POINT = 2


@dataclass(frozen=True)
class Georeference:
    """Where the pixels of one GeoTIFF image are on Earth.

    Attributes
    ----------
    transform : affine.Affine or None
        Pixel (col, row) -> model (x, y), PixelIsArea convention (the corner of
        pixel (0, 0) maps to ``transform.c, transform.f``), exactly as GDAL and
        rasterio report it. It may be rotated/sheared (``b``/``d`` non-zero;
        see :func:`require_north_up`), south-up (``e > 0``) or west-left
        (``a < 0``). ``None`` when the image has no affine georeferencing (no
        tags, or only ground control points).
    crs : str or None
        ``"EPSG:<code>"`` when the geokeys name an EPSG code pyproj knows,
        otherwise WKT2 (2019) built with pyproj; ``None`` when there are no
        geokeys or they cannot be mapped with certainty.
    pixel_is_point : bool
        ``GTRasterTypeGeoKey`` is PixelIsPoint. The transform has already been
        shifted by half a pixel (GDAL's default behaviour); this flag is kept
        so that writers can round-trip it.
    """

    transform: Affine | None
    crs: str | None
    pixel_is_point: bool

    @property
    def is_georeferenced(self) -> bool:
        """Whether the image has an affine transform."""
        return self.transform is not None


def require_north_up(transform: Affine | None, href: str) -> None:
    """Refuse a rotated or sheared transform.

    South-up (``e > 0``) and west-left (``a < 0``) grids stay axis-aligned
    and are accepted, as is ``None`` (not georeferenced).

    Parameters
    ----------
    transform : affine.Affine or None
        The image transform, as returned in :attr:`Georeference.transform`.
    href : str
        The file the transform comes from, named in the error message.

    Raises
    ------
    xarray_rasteret.errors.UnsupportedTiffError
        If ``transform`` has a rotation or shear term (``b`` or ``d`` non-zero)
        or a zero scale.
    """
    if transform is None:
        return
    if transform.b != 0.0 or transform.d != 0.0:
        raise UnsupportedTiffError(
            f"{href}: the GeoTIFF has a rotated/sheared geotransform "
            f"(b={transform.b!r}, d={transform.d!r}); rotated and sheared transforms "
            "are not supported. Warp the file to a north-up grid first, e.g. "
            "`gdalwarp -of COG in.tif out.tif`."
        )
    if transform.a == 0.0 or transform.e == 0.0:
        raise UnsupportedTiffError(
            f"{href}: the GeoTIFF geotransform has a zero pixel size "
            f"(a={transform.a!r}, e={transform.e!r}); it cannot be used."
        )


def georeference_from_ifd(
    ifd: Any,
    *,
    header: bytes | None = None,
    point_geo_ignore: bool = False,
    honour_negative_scale_y: bool = False,
) -> Georeference:
    """Georeference an async-tiff image file directory.

    Parameters
    ----------
    ifd : async_tiff.ImageFileDirectory
        The IFD (usually ``tiff.ifds[0]``; overviews carry no geotags).
    header : bytes, optional
        The first bytes of the file, when the caller holds them (a header
        prefetch): the GeoKeys async-tiff drops (GeogTOWGS84,
        ProjRectifiedGridAngle, vertical keys) are read from them. Without
        them, a Hotine oblique Mercator gets no CRS and a datum shift to WGS 84
        is not kept.
    point_geo_ignore : bool, default False
        Like GDAL's ``GTIFF_POINT_GEO_IGNORE=YES``: do not shift PixelIsPoint
        transforms by half a pixel.
    honour_negative_scale_y : bool, default False
        Like GDAL's ``GTIFF_HONOUR_NEGATIVE_SCALEY=YES``: a negative
        ModelPixelScale Y gives a south-up transform.

    Returns
    -------
    Georeference
        See :func:`georeference_from_tags`.
    """
    directory = ifd.geo_key_directory
    geo_keys = geo_keys_to_dict(directory) if directory is not None else None
    if geo_keys is not None and header is not None:
        extra = geo_keys_from_header(header)
        if extra:
            geo_keys = {**extra, **geo_keys}
    return georeference_from_tags(
        model_pixel_scale=ifd.model_pixel_scale,
        model_tiepoint=ifd.model_tiepoint,
        model_transformation=ifd.model_transformation,
        geo_keys=geo_keys,
        image_width=ifd.image_width,
        image_height=ifd.image_height,
        point_geo_ignore=point_geo_ignore,
        honour_negative_scale_y=honour_negative_scale_y,
    )


def georeference_from_tags(
    *,
    model_pixel_scale: Sequence[float] | None,
    model_tiepoint: Sequence[float] | None,
    model_transformation: Sequence[float] | None,
    geo_keys: Mapping[str, Any] | None,
    image_width: int,
    image_height: int,
    point_geo_ignore: bool = False,
    honour_negative_scale_y: bool = False,
) -> Georeference:
    """Georeference an image from its raw GeoTIFF tag values.

    Parameters
    ----------
    model_pixel_scale : sequence of float or None
        ModelPixelScaleTag (33550): ``(sx, sy, sz)``.
    model_tiepoint : sequence of float or None
        ModelTiepointTag (33922): ``(i, j, k, x, y, z)`` per tiepoint.
    model_transformation : sequence of float or None
        ModelTransformationTag (34264): a row-major 4x4 matrix.
    geo_keys : mapping or None
        GeoKeys by async-tiff name (``"model_type"``, ``"projected_type"``,
        ``"proj_coord_trans"``, ...). ``"proj_rectified_grid_angle"`` may be
        added by callers that parsed key 3096 themselves (async-tiff drops it).
    image_width, image_height : int
        Image size in pixels (checked to be positive; the transform itself
        does not depend on them).
    point_geo_ignore : bool, default False
        Like GDAL's ``GTIFF_POINT_GEO_IGNORE=YES``.
    honour_negative_scale_y : bool, default False
        Like GDAL's ``GTIFF_HONOUR_NEGATIVE_SCALEY=YES``. By default, like
        GDAL, a negative ModelPixelScale Y is taken as a writer's mistake and
        the image is read north-up; south-up images written by GDAL use a
        ModelTransformation with ``e > 0``, which is always honoured.

    Returns
    -------
    Georeference
        ``transform`` and ``crs`` as GDAL reports them; either may be ``None``.

    Notes
    -----
    Like GDAL, a single tiepoint with a non-zero pixel scale wins over a
    transformation matrix; several tiepoints without a pixel scale are ground
    control points, which are not an affine georeferencing (``transform`` is
    then ``None``).
    """
    if image_width <= 0 or image_height <= 0:
        raise ValueError(f"invalid image size {image_width}x{image_height}")
    keys: Mapping[str, Any] = geo_keys or {}
    pixel_is_point = keys.get("raster_type") == _RASTER_PIXEL_IS_POINT
    transform = _transform_from_tags(
        model_pixel_scale, model_tiepoint, model_transformation, honour_negative_scale_y
    )
    if transform is not None and pixel_is_point and not point_geo_ignore:
        # Centre of pixel (0, 0) -> its corner: GDAL's default for PixelIsPoint.
        transform = transform @ Affine.translation(-0.5, -0.5)
    crs = crs_from_geo_keys(keys) if keys else None
    return Georeference(transform=transform, crs=crs, pixel_is_point=pixel_is_point)


def _transform_from_tags(
    scale: Sequence[float] | None,
    tiepoint: Sequence[float] | None,
    matrix: Sequence[float] | None,
    honour_negative_scale_y: bool,
) -> Affine | None:
    if (
        tiepoint is not None
        and len(tiepoint) >= 6
        and scale is not None
        and len(scale) >= 2
        and scale[0] != 0.0
        and scale[1] != 0.0
    ):
        i, j, _k, x, y = (float(v) for v in tiepoint[:5])
        sx, sy = float(scale[0]), -float(scale[1])
        if sy > 0 and not honour_negative_scale_y:
            sy = -sy  # GDAL's default: a negative ScaleY is read as north-up
        # The tiepoint ties raster (i, j) to model (x, y); solve for the origin.
        return Affine(sx, 0.0, x - i * sx, 0.0, sy, y - j * sy)
    if matrix is not None and len(matrix) >= 16:
        m = [float(v) for v in matrix]
        return Affine(m[0], m[1], m[3], m[4], m[5], m[7])
    return None
