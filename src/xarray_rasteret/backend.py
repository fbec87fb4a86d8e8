"""The ``rasteret`` xarray backend: ``xr.open_dataset(path, engine="rasteret")``.

Importing this module is cheap: xarray imports every engine to list them, so
the heavy parts load inside :meth:`RasteretBackendEntrypoint.open_dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from xarray.backends import BackendEntrypoint

from ._hrefs import COLLECTION_SUFFIXES, suffix_of

__all__ = ["RasteretBackendEntrypoint"]


def _file_label(href: str) -> str:
    """The file name of ``href`` without its suffix (``s3://b/s2.parquet`` -> ``s2``)."""
    base = os.path.basename(href.split("?", 1)[0].rstrip("/"))
    return os.path.splitext(base)[0] or base


class RasteretBackendEntrypoint(BackendEntrypoint):
    """Open a rasteret collection (GeoParquet) or a single GeoTIFF as a lazy Dataset.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.open_dataset(
    ...     "collection.parquet", engine="rasteret", bands=["B04"]
    ... )  # doctest: +SKIP
    >>> ds.B04.isel(time=0, x=slice(0, 256), y=slice(0, 256)).values  # doctest: +SKIP
    """

    description = (
        "Lazy, tile-exact reads of cloud-optimized GeoTIFF collections indexed in GeoParquet"
    )
    url = "https://github.com/xarray-rasteret/xarray-rasteret"
    open_dataset_parameters = (
        "filename_or_obj",
        "drop_variables",
        "bands",
        "bbox",
        "bbox_crs",
        "time",
        "filters",
        "overview_level",
        "crs",
        "resolution",
        "align",
        "progress",
        "geobox",
        "like",
        "resampling",
        "groupby",
        "method",
        "sortby",
        "mask",
        "mask_and_scale",
        "decode_coords",
        "decode_times",
        "decode_timedelta",
        "use_cftime",
        "concat_characters",
        "max_concurrent",
        "storage_options",
        "backend",
        "check_unchanged",
        "on_error",
        "data_source",
        "sign",
        "coords",
    )

    # Long because it is the whole documented keyword surface of the engine;
    # the work is delegated to build_dataset.
    def open_dataset(
        self,
        filename_or_obj: Any,
        *,
        drop_variables: str | Iterable[str] | None = None,
        bands: Iterable[str] | None = None,
        bbox: Any = None,
        bbox_crs: Any = "EPSG:4326",
        time: tuple[Any, Any] | None = None,
        filters: dict[str, Any] | None = None,
        overview_level: int | None = None,
        crs: Any = None,
        resolution: float | tuple[float, float] | None = None,
        align: tuple[float, float] | None = None,
        geobox: Any = None,
        like: Any = None,
        resampling: str = "nearest",
        groupby: str | None = None,
        method: str | Callable[..., Any] = "first",
        sortby: str | None = None,
        mask: Any = None,
        mask_and_scale: bool | None = False,
        decode_coords: bool | str | None = True,
        decode_times: bool | None = True,
        decode_timedelta: bool | None = None,
        use_cftime: bool | None = None,
        concat_characters: bool | None = True,
        max_concurrent: int = 64,
        storage_options: dict[str, Any] | None = None,
        backend: Any = None,
        check_unchanged: bool = True,
        on_error: str = "raise",
        data_source: Any = None,
        sign: Callable[[str], str] | None = None,
        progress: bool = False,
        coords: str = "arrays",
    ) -> Any:
        """Open a collection or a GeoTIFF lazily.

        Parameters
        ----------
        filename_or_obj
            Path or URL of a collection Parquet file or of a GeoTIFF, or a
            :class:`~xarray_rasteret.Collection`.
        drop_variables
            Bands to leave out.
        bands
            Bands to open (default: all). A single GeoTIFF's samples are
            ``band_1`` ... ``band_N``.
        bbox
            ``(xmin, ymin, xmax, ymax)`` to select records and crop the grid to;
            with a target grid, the extent of that grid. A shapely or GeoJSON
            geometry, a GeoSeries or a GeoDataFrame stands for its extent (odc-stac's
            ``geopolygon``); a GeoSeries'/GeoDataFrame's CRS is ``bbox_crs``'s default.
        bbox_crs
            CRS of ``bbox`` (default EPSG:4326, longitude/latitude).
        time
            ``(start, end)``, inclusive, to select records.
        filters
            Selection on index columns: ``{"platform": "sentinel-2a", "eo:cloud_cover_lt": 20}``.
        overview_level
            Read overview ``n`` (1 = first overview) instead of full resolution.
            With a target grid the default is GDAL's choice (``OVERVIEW_LEVEL=AUTO``:
            the coarsest overview still at least as fine as the target), then
            resampled; an integer forces that level.
        crs
            Target CRS (anything pyproj accepts). Giving ``crs``, ``resolution`` or
            ``align`` puts every record and band on one target grid, resampled
            lazily (only the source tiles a key needs are read). Missing parts:
            CRS the most common of the records, resolution the finest of the
            requested bands (in a foreign CRS, GDAL's suggested warp resolution),
            extent ``bbox`` or else the union of the records.
        resolution
            Target pixel size in target CRS units: one number or ``(x, y)``.
        align
            ``(x, y)`` in the target CRS on a pixel corner; default ``(0, 0)``,
            i.e. pixel edges at multiples of the resolution (like ``gdalwarp -tap``).
            With ``crs`` alone (no ``resolution``, ``align`` or ``bbox``) the grid
            is GDAL's suggestion instead, origin included: the grid
            ``gdalwarp -t_srs`` and ``rasterio.warp.calculate_default_transform`` give.
        geobox
            An odc-geo ``GeoBox``: the output is exactly its grid (CRS, pixel size,
            extent, alignment), as odc-stac's ``geobox=``. The same as passing its
            ``crs=``, ``resolution=``, ``bbox=`` (with ``bbox_crs=`` its CRS) and
            ``align=`` (its corner): records outside it are not read. Not with
            those keywords.
        like
            A Dataset or DataArray whose grid to reuse: its CRS (the
            ``spatial_ref`` grid-mapping coordinate rioxarray and odc-geo write)
            and its regular, north-up ``x``/``y`` coordinates. As ``geobox=``.
        resampling
            ``"nearest"`` (default), ``"bilinear"``, ``"cubic"``, ``"average"`` or
            ``"mode"``; nodata never contributes. Records already on the target
            grid are copied, not resampled.
        groupby
            ``"solar_day"`` (local solar day from the footprint centroid longitude,
            as odc-stac) or an index column: records of a group become one time
            step. Order within a group is by datetime, then id; the first valid
            (not nodata, inside the record) pixel wins; the time, id and column
            coordinates are the first member's. Without it, records with equal
            times stay separate steps. An ISO 8601 period (``"P1D"``, ``"P16D"``,
            ``"P1W"``, ``"P1M"``, ``"P3M"``, ``"P1Y"``; counted from 1970-01-01,
            weeks from a Monday, see :mod:`xarray_rasteret._lazy.periods`) groups
            by the record's UTC datetime; ``time`` is then the period's start.
        method
            How the records of a group merge (with ``groupby``): ``"first"``
            (default), ``"last"``, ``"min"``, ``"max"``, ``"mean"``, ``"median"``,
            ``"std"``, ``"count"``, or a callable ``f(stack, axis=0)`` on a float64
            stack with NaN where a record has no valid value. Nodata never
            contributes; ``first``/``last``/``min``/``max`` keep the dtype, the
            others give floats with NaN where no record is valid (``count``:
            ``uint16``). ``first``/``last`` stop fetching a group's records once
            every pixel of a chunk has a value (:mod:`xarray_rasteret._lazy.early_exit`).
            See :mod:`xarray_rasteret._lazy.methods`.
        sortby
            A column ordering the records within a group before time (e.g.
            ``"eo:cloud_cover"``, least cloudy first; ``"-name"`` descending): with
            ``method="first"``, the best record wins where it has data.
        mask
            Drop pixels by a band of the same records before anything is merged:
            ``{"band": "SCL", "drop": [0, 3, 8, 9, 10]}`` (class values),
            ``{"band": "SCL", "keep": [4, 5]}``, ``{"band": "QA_PIXEL", "bits": [1, 3,
            4]}`` (any bit set drops) or ``{"band": ..., "where": f}`` (``f(values)``
            True drops). The mask band is read on the output grid with nearest
            neighbour and applied to each record's other bands; pixels where it has
            no value are dropped too. See :mod:`xarray_rasteret._lazy.masks`.
        mask_and_scale
            Mask nodata to NaN and apply scale/offset (default False: native dtype).
            Native data keeps ``_FillValue``, ``scale_factor`` and ``add_offset``
            in ``attrs``; masked data has them in ``encoding`` (rioxarray's rule).
            True also applies a file's internal mask (GDAL's mask IFDs): pixels
            where it is 0 are NaN and never contribute to a merge; False fetches
            no mask tile.
            ``decode_cf=False`` in :func:`xarray.open_dataset` turns it off.
        decode_coords
            True, ``"coordinates"`` or ``"all"`` (default True): ``spatial_ref``,
            the grid mapping, is a coordinate. False leaves it a data variable,
            as xarray does for an undecoded grid mapping.
        decode_times
            Accepted for xarray's decoders (``decode_cf=False`` passes False);
            ``time`` comes from the index as ``datetime64`` and is not CF-encoded,
            so there is nothing to decode and it stays ``datetime64`` either way.
        decode_timedelta
            Accepted; there are no timedelta variables, so it has no effect.
        use_cftime
            True converts ``time`` to ``cftime`` objects (standard calendar;
            needs the ``cftime`` package); False or None keep ``datetime64``.
        concat_characters
            Accepted; there are no character arrays, so it has no effect.
        max_concurrent
            Most byte-range requests in flight at once per read.
        storage_options
            Store options (credentials, endpoint_url, anon, retries, ...).
        backend
            A store object with async ``get_range_async``/``get_ranges_async``.
        check_unchanged
            Compare each response's object size (and ETag) with those recorded at
            build, at no extra request, and raise ``ObjectChangedError`` when the
            object was replaced (default True). False reads without the check.
        on_error
            ``"raise"`` (default): a tile that cannot be read fails the read, naming
            the object. ``"nodata"``: tiles that still fail after the retries (404,
            403, 5xx, timeouts, short or undecodable data) read as the band's nodata
            (NaN for floats without one, 0 for integers without one), and each read
            warns (``ReadFailureWarning``) naming the objects;
            ``xarray_rasteret.read_stats().failures`` lists every failed range. A
            changed object (``ObjectChangedError``) still raises.
        data_source
            A registered data source's name (``xarray_rasteret.data_sources.registered()``,
            e.g. ``"sentinel-2-l2a/earth-search"``) or a
            :class:`~xarray_rasteret.data_sources.DataSource`, as in the helpers:
            ``bands`` may be its band codes (``"B04"`` for the asset ``red``; the
            variable keeps the name asked for), its href rewriting applies to every
            read, and its signer signs every request. Default: inferred from the
            collection's STAC collection ids and hrefs, else none.
        sign
            ``sign(href) -> signed href``, called on every request at read time and
            never applied to the collection (``planetary_computer.sign_url``, or a
            :class:`~xarray_rasteret.data_sources.PlanetaryComputerSigner`, which
            caches tokens until shortly before they expire). A signed URL refused
            with 401/403 is signed again and retried once. Default: the data
            source's signer, if any. Must pickle for dask's process workers.
        progress
            Show a tqdm bar over the tiles of each read that runs without dask
            (``.load()``, ``.values``, ``load_async``): one bar per variable
            read, tiles done out of planned. Under dask use dask's own progress
            bars (``dask.diagnostics.ProgressBar``); chunks show none.
        coords
            ``"arrays"`` (default): ``x``/``y`` are explicit 1-D arrays of pixel
            centres. ``"raster_index"``: ``x``/``y`` are backed by rasterix's
            ``RasterIndex`` (``pip install "xarray-rasteret[rasterix]"``), which
            holds the affine transform and no coordinate arrays: the same values,
            ``isel``/``sel`` slices keep an exact transform, and
            ``ds.xindexes["x"].transform()`` is the grid's affine. Its ``sel`` by a
            label slice takes every pixel whose cell contains a bound (a bound on a
            cell edge takes the pixel after the edge), where the default takes the
            pixels whose centres lie within the bounds.

        Returns
        -------
        xarray.Dataset
            A variable per band with dims ``(time, y, x)``, a ``spatial_ref`` coordinate.

        Raises
        ------
        ReprojectionRequiredError
            Without a target grid, when records or bands are on different pixel
            grids (CRS, resolution or alignment): there is no silent default grid,
            the message says what to pass (``crs=``, ``resolution=``).
        ValueError
            For a ``decode_coords`` other than a bool, ``"coordinates"`` or ``"all"``,
            or a ``coords`` other than ``"arrays"`` or ``"raster_index"``.
        ImportError
            For ``coords="raster_index"`` without rasterix installed.
        """
        from ._arguments import (
            bbox_crs_of,
            checked_bands,
            checked_bbox,
            checked_max_concurrent,
            checked_resolution,
            checked_time,
        )
        from ._lazy.bands import bands_to_load, resolve_bands, signed_options
        from ._lazy.dataset import DatasetRequest, build_dataset
        from ._lazy.masks import checked_mask
        from ._lazy.methods import checked_method
        from ._lazy.raster_index import checked_coords
        from ._read.failures import checked_on_error
        from ._read.tasks import ReadOptions
        from .ingest import as_collection

        # Slips fail here, named, before any I/O (see _arguments).
        max_concurrent = checked_max_concurrent(max_concurrent)
        bands = checked_bands(bands)
        time = checked_time(time)
        layout = checked_coords(coords)
        if geobox is not None or like is not None:
            crs, resolution, bbox, bbox_crs, align = _grid_keywords(
                geobox, like, crs=crs, resolution=resolution, bbox=bbox, align=align,
                bbox_crs=bbox_crs,
            )
        bbox_crs = bbox_crs_of(bbox, bbox_crs)
        bbox = checked_bbox(bbox, bbox_crs)
        resolution = checked_resolution(resolution, crs)
        options = ReadOptions(
            max_concurrent=max_concurrent,
            storage_options=dict(storage_options or {}),
            backend=backend,
            check_unchanged=check_unchanged,
            on_error=checked_on_error(on_error),
        )
        wanted = tuple(bands) if bands is not None else None
        rule = checked_mask(mask)
        to_load = bands_to_load(wanted, data_source)
        if to_load is not None and rule is not None:  # the mask band's metadata too
            to_load = tuple(dict.fromkeys((*to_load, *(bands_to_load((rule.band,), data_source)
                                                      or ()))))
        collection = as_collection(
            filename_or_obj, bands=to_load,
            storage_options=options.storage_options, backend=backend,
        )
        if drop_variables is not None:
            drop = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables)
            wanted = tuple(b for b in (wanted or collection.bands) if b not in drop)
        # Band codes -> assets, rewriting and signing: the helpers' rules.
        names = wanted if wanted is not None else tuple(collection.bands)
        assets, source = resolve_bands(collection, names, data_source) if names else ({}, None)
        options = signed_options(options, sign, source)
        if rule is not None:  # the mask band as the collection names it
            mask_asset, _ = resolve_bands(collection, [rule.band], source or data_source)
            rule = replace(rule, band=mask_asset[rule.band])
        request = DatasetRequest(
            bands=wanted if not assets else tuple(assets),
            assets=assets or None,
            data_source=source,
            bbox=tuple(bbox) if bbox is not None else None,
            bbox_crs=bbox_crs,
            time=tuple(time) if time is not None else None,
            filters=filters,
            overview_level=overview_level,
            mask_and_scale=bool(mask_and_scale),
            crs=crs,
            resolution=resolution,
            align=tuple(align) if align is not None else None,  # type: ignore[arg-type]
            resampling=resampling,
            groupby=groupby,
            method=checked_method(method, groupby),
            sortby=sortby,
            mask=rule,
            progress=bool(progress),
            coords=layout,
        )
        if decode_coords not in (None, True, False, "coordinates", "all"):
            raise ValueError(
                f"decode_coords={decode_coords!r}: expected True, False, 'coordinates' or 'all'"
            )
        ds = build_dataset(collection, request, options)
        if "title" not in ds.attrs and isinstance(filename_or_obj, str | os.PathLike):
            # An unnamed collection is known by its file's name.
            ds.attrs = {"title": _file_label(os.fspath(filename_or_obj)), **ds.attrs}
        if decode_coords is False:
            ds = ds.reset_coords("spatial_ref")
        if use_cftime:
            ds = ds.convert_calendar("standard", dim="time", use_cftime=True)
        return ds

    def open_groups_as_dict(
        self,
        filename_or_obj: Any,
        *,
        bands: Iterable[str] | None = None,
        drop_variables: str | Iterable[str] | None = None,
        data_source: Any = None,
        storage_options: dict[str, Any] | None = None,
        backend: Any = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """One lazy dataset per native grid of the collection, by group path.

        The groups of :meth:`open_datatree`: ``{"/": root, "/r10m": ..., "/r20m": ...}``
        (with several CRSs, ``"/EPSG_32633/r10m"``, ...). Each group is exactly
        :meth:`open_dataset` of its records with ``bands=`` its bands, and takes
        the same keywords; a group no record of the selection (``bbox``, ``time``,
        ``filters``) is left in is left out.

        Examples
        --------
        >>> groups = xr.open_groups("s2.parquet", engine="rasteret")  # doctest: +SKIP
        >>> list(groups)  # doctest: +SKIP
        ['/', '/r10m', '/r20m', '/r60m']
        """
        import xarray as xr

        from ._arguments import checked_bands
        from ._lazy.bands import band_sources, bands_to_load, resolve_bands
        from ._lazy.tree import native_groups
        from .collection import Collection
        from .errors import AOIOutsideDataError, NoRecordSelectedError
        from .ingest import as_collection

        wanted = checked_bands(bands)
        collection = as_collection(
            filename_or_obj, bands=bands_to_load(wanted, data_source),
            storage_options=storage_options, backend=backend,
        )
        names = list(wanted) if wanted is not None else list(collection.bands)
        if drop_variables is not None:
            drop = {drop_variables} if isinstance(drop_variables, str) else set(drop_variables)
            names = [b for b in names if b not in drop]
        assets, source = resolve_bands(collection, names, data_source)
        groups = native_groups(band_sources(collection, assets, source), collection.ids)
        out: dict[str, Any] = {"/": xr.Dataset()}
        empty: list[Exception] = []
        for path, (rows, group_bands) in groups.items():
            part = collection
            if len(rows) < len(collection):
                part = Collection(collection.table.take(rows), name=collection.name)
            try:
                out["/" + path] = self.open_dataset(
                    part, bands=group_bands, data_source=data_source,
                    storage_options=storage_options, backend=backend, **kwargs,
                )
            except (AOIOutsideDataError, NoRecordSelectedError) as exc:
                empty.append(exc)  # none of this group's records is selected
        if len(out) == 1 and empty:
            raise empty[0]
        return out

    def open_datatree(self, filename_or_obj: Any, **kwargs: Any) -> Any:
        """A ``DataTree`` with one group per native grid (see :meth:`open_groups_as_dict`).

        Sentinel-2's 10, 20 and 60 m bands come as the groups ``/r10m``, ``/r20m``
        and ``/r60m``, each at its own resolution, nothing resampled.

        Examples
        --------
        >>> tree = xr.open_datatree("s2.parquet", engine="rasteret")  # doctest: +SKIP
        >>> tree["r20m"].ds.B05  # doctest: +SKIP
        """
        import xarray as xr

        return xr.DataTree.from_dict(self.open_groups_as_dict(filename_or_obj, **kwargs))

    def guess_can_open(self, filename_or_obj: Any) -> bool:
        """Whether ``filename_or_obj`` looks like a collection Parquet file.

        A GeoTIFF is not claimed, though ``engine="rasteret"`` opens one: without
        ``engine=`` it belongs to rioxarray's ``rasterio`` engine, which code
        written before this package was installed expects.
        """
        if isinstance(filename_or_obj, os.PathLike):
            filename_or_obj = os.fspath(filename_or_obj)
        if not isinstance(filename_or_obj, str):
            return False
        return suffix_of(filename_or_obj) in COLLECTION_SUFFIXES


def _grid_keywords(geobox: Any, like: Any, **given: Any) -> tuple[Any, ...]:
    """``crs, resolution, bbox, bbox_crs, align`` of ``geobox=`` or ``like=``."""
    from .geo.target import geobox_grid, like_grid

    which = "geobox=" if geobox is not None else "like="
    if geobox is not None and like is not None:
        raise ValueError("geobox= and like= both give the output grid: pass one of them")
    clash = [f"{k}=" for k in ("crs", "resolution", "bbox", "align") if given[k] is not None]
    if clash:
        raise ValueError(
            f"{which} gives the whole output grid, so {', '.join(clash)} cannot be given "
            f"with it: drop {' and '.join(clash)}, or drop {which} and spell the grid out"
        )
    if given["bbox_crs"] not in (None, "EPSG:4326"):
        raise ValueError(f"bbox_crs= has no effect with {which}: the grid's own CRS is used")
    out = geobox_grid(geobox) if geobox is not None else like_grid(like)
    return out["crs"], out["resolution"], out["bbox"], out["bbox_crs"], out["align"]

