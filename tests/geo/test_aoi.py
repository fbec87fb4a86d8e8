"""normalize_geometries: every input form, CRS resolution and every error."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pyarrow as pa
import pyproj
import pytest
import shapely

from xarray_rasteret.geo.aoi import (
    AUTO,
    AOIs,
    EmptyGeometryError,
    GeometryInputError,
    InvalidGeometryWarning,
    UnsupportedGeometryInputError,
    bounds_in_crs,
    normalize_geometries,
    to_crs,
)

BOX = shapely.box(12.0, 52.0, 12.1, 52.1)
PT = shapely.Point(12.05, 52.05)
UTM33 = pyproj.CRS.from_epsg(32633)
WGS84 = pyproj.CRS.from_epsg(4326)


def _geoarrow_field(name: str, storage: pa.DataType, ext: str, crs=None) -> pa.Field:
    meta = {b"ARROW:extension:name": ext.encode()}
    if crs is not None:
        meta[b"ARROW:extension:metadata"] = json.dumps({"crs": crs}).encode()
    return pa.field(name, storage, metadata=meta)


# --------------------------------------------------------------------------- forms


def test_bbox_tuple_list_and_array():
    for inp in ((12.0, 52.0, 12.1, 52.1), [12, 52, 12.1, 52.1], np.array([12.0, 52, 12.1, 52.1])):
        aois = normalize_geometries(inp)
        assert isinstance(aois, AOIs)
        assert len(aois) == 1
        assert aois.geometries[0].equals(BOX)
        assert aois.crs == WGS84
        assert aois.attributes is None


def test_shapely_single_list_tuple_array():
    assert normalize_geometries(BOX).geometries == [BOX]
    assert normalize_geometries([BOX, PT]).geometries == [BOX, PT]
    assert normalize_geometries((BOX, PT)).geometries == [BOX, PT]
    assert normalize_geometries(np.array([PT, BOX], dtype=object)).geometries == [PT, BOX]
    # four points are geometries, not a bbox
    four = [PT] * 4
    assert normalize_geometries(four).geometries == four


def test_wkb_bytes_and_list():
    assert normalize_geometries(shapely.to_wkb(BOX)).geometries[0].equals(BOX)
    assert normalize_geometries(bytearray(shapely.to_wkb(PT))).geometries[0].equals(PT)
    got = normalize_geometries([shapely.to_wkb(BOX), shapely.to_wkb(PT, hex=False)])
    assert [g.wkt for g in got.geometries] == [BOX.wkt, PT.wkt]


def test_geojson_geometry_feature_collection():
    gj = shapely.geometry.mapping(BOX)
    assert normalize_geometries(gj).geometries[0].equals(BOX)
    feat = {"type": "Feature", "properties": {"name": "a", "n": 1}, "geometry": gj}
    aois = normalize_geometries(feat)
    assert aois.geometries[0].equals(BOX)
    assert aois.attributes.to_pylist() == [{"name": "a", "n": 1}]
    fc = {
        "type": "FeatureCollection",
        "features": [
            feat,
            {
                "type": "Feature",
                "properties": {"name": "b"},
                "geometry": shapely.geometry.mapping(PT),
            },
        ],
    }
    aois = normalize_geometries(fc)
    assert [g.geom_type for g in aois.geometries] == ["Polygon", "Point"]
    assert aois.attributes.to_pylist() == [{"name": "a", "n": 1}, {"name": "b", "n": None}]
    assert aois.crs == WGS84
    # a list of features and geometry dicts
    aois = normalize_geometries([feat, gj])
    assert aois.attributes.num_rows == 2
    # features without properties: a table with rows and no columns
    fc2 = {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": gj}]}
    attrs = normalize_geometries(fc2).attributes
    assert attrs.num_rows == 1 and attrs.num_columns == 0


def test_geojson_legacy_crs_member_drives_auto():
    gj = dict(shapely.geometry.mapping(shapely.box(500000, 5800000, 501000, 5801000)))
    gj["crs"] = {"type": "name", "properties": {"name": "EPSG:32633"}}
    assert normalize_geometries(gj).crs == UTM33
    assert normalize_geometries(gj, geometry_crs=32634).crs.to_epsg() == 32634


def test_arrow_wkb_arrays():
    wkb = [shapely.to_wkb(BOX), shapely.to_wkb(PT)]
    for arr in (
        pa.array(wkb, pa.binary()),
        pa.array(wkb, pa.large_binary()),
        pa.chunked_array([pa.array(wkb[:1]), pa.array(wkb[1:])]),
    ):
        aois = normalize_geometries(arr)
        assert [g.wkt for g in aois.geometries] == [BOX.wkt, PT.wkt]
        assert aois.crs == WGS84
        assert aois.attributes is None
    sliced = pa.array(wkb).slice(1)
    assert normalize_geometries(sliced).geometries[0].equals(PT)


def test_arrow_wkt_array():
    aois = normalize_geometries(pa.array([BOX.wkt]))
    assert aois.geometries[0].equals(BOX)


class _GeoArrowWKB(pa.ExtensionType):
    def __init__(self, metadata: bytes = b""):
        self._meta = metadata
        super().__init__(pa.binary(), "geoarrow.wkb")

    def __arrow_ext_serialize__(self) -> bytes:
        return self._meta

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):
        return cls(serialized)


def test_geoarrow_extension_array_crs_drives_auto():
    meta = json.dumps({"crs": UTM33.to_json_dict()}).encode()
    storage = pa.array([shapely.to_wkb(shapely.box(500000, 5800000, 501000, 5801000))])
    arr = pa.ExtensionArray.from_storage(_GeoArrowWKB(meta), storage)
    aois = normalize_geometries(arr)
    assert aois.crs == UTM33
    assert aois.geometries[0].bounds == (500000, 5800000, 501000, 5801000)
    # chunked, too
    assert normalize_geometries(pa.chunked_array([arr, arr])).crs == UTM33
    # explicit geometry_crs wins over the metadata
    assert normalize_geometries(arr, geometry_crs="EPSG:32634").crs.to_epsg() == 32634
    # no crs in the metadata: EPSG:4326
    plain = pa.ExtensionArray.from_storage(_GeoArrowWKB(b""), pa.array([shapely.to_wkb(PT)]))
    assert normalize_geometries(plain).crs == WGS84


def test_geoarrow_field_metadata_in_table_drives_auto():
    field = pa.field(
        "geom",
        pa.binary(),
        metadata={
            b"ARROW:extension:name": b"geoarrow.wkb",
            b"ARROW:extension:metadata": json.dumps({"crs": UTM33.to_json_dict()}).encode(),
        },
    )
    poly = shapely.box(500000, 5800000, 501000, 5801000)
    table = pa.table(
        [pa.array([shapely.to_wkb(poly)]), pa.array(["x"])],
        schema=pa.schema([field, pa.field("label", pa.string())]),
    )
    aois = normalize_geometries(table)  # found as the GeoArrow-typed column
    assert aois.crs == UTM33
    assert aois.geometries[0].equals(poly)
    assert aois.attributes.column_names == ["label"]
    assert aois.attributes.to_pylist() == [{"label": "x"}]
    # a record batch and a reader work the same
    assert normalize_geometries(table.to_batches()[0]).crs == UTM33
    assert (
        normalize_geometries(
            pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
        ).crs
        == UTM33
    )


def test_geoarrow_crs_as_string_and_srid():
    for crs, meta_extra in (
        ("EPSG:32633", {}),
        (UTM33.to_wkt(), {}),
        ("32633", {"crs_type": "srid"}),
    ):
        meta = json.dumps({"crs": crs, **meta_extra}).encode()
        field = pa.field(
            "g",
            pa.binary(),
            metadata={b"ARROW:extension:name": b"geoarrow.wkb", b"ARROW:extension:metadata": meta},
        )
        table = pa.table([pa.array([shapely.to_wkb(PT)])], schema=pa.schema([field]))
        assert normalize_geometries(table).crs == UTM33


def _native_arrays():
    """(geometry, storage array, extension name) for every native GeoArrow type."""
    xy = pa.struct([("x", pa.float64()), ("y", pa.float64())])
    inter = pa.list_(pa.float64(), 2)
    pt = shapely.Point(1, 2)
    line = shapely.LineString([(0, 0), (1, 1), (2, 0)])
    poly = shapely.Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (1, 2), (2, 2), (1, 1)]])
    mpt = shapely.MultiPoint([(0, 0), (3, 3)])
    mline = shapely.MultiLineString([[(0, 0), (1, 1)], [(2, 2), (3, 3)]])
    mpoly = shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)])

    def coords(g):
        return [{"x": x, "y": y} for x, y in shapely.get_coordinates(g)]

    def ring_list(p):
        return [coords(p.exterior)] + [coords(r) for r in p.interiors]

    return [
        (pt, pa.array([{"x": 1.0, "y": 2.0}], xy), "geoarrow.point"),
        (pt, pa.array([[1.0, 2.0]], inter), "geoarrow.point"),
        (line, pa.array([coords(line)], pa.list_(xy)), "geoarrow.linestring"),
        (
            line,
            pa.array([shapely.get_coordinates(line).tolist()], pa.list_(inter)),
            "geoarrow.linestring",
        ),
        (poly, pa.array([ring_list(poly)], pa.list_(pa.list_(xy))), "geoarrow.polygon"),
        (mpt, pa.array([coords(mpt)], pa.list_(xy)), "geoarrow.multipoint"),
        (
            mline,
            pa.array([[coords(g) for g in mline.geoms]], pa.list_(pa.list_(xy))),
            "geoarrow.multilinestring",
        ),
        (
            mpoly,
            pa.array([[ring_list(p) for p in mpoly.geoms]], pa.list_(pa.list_(pa.list_(xy)))),
            "geoarrow.multipolygon",
        ),
    ]


@pytest.mark.parametrize("case", range(8))
def test_native_geoarrow_field_and_bare_storage(case):
    geom, storage, ext = _native_arrays()[case]
    field = _geoarrow_field("geometry", storage.type, ext, crs=UTM33.to_json_dict())
    table = pa.table(
        [storage, pa.array([7])], schema=pa.schema([field, pa.field("id", pa.int64())])
    )
    aois = normalize_geometries(table)
    assert aois.geometries[0].equals(geom)
    assert aois.crs == UTM33
    assert aois.attributes.column_names == ["id"]
    # bare storage: nesting depth picks point / linestring / polygon / multipolygon
    if ext in (
        "geoarrow.point",
        "geoarrow.linestring",
        "geoarrow.polygon",
        "geoarrow.multipolygon",
    ):
        bare = normalize_geometries(storage)
        assert bare.geometries[0].equals(geom)
        assert bare.crs == WGS84


def test_native_geoarrow_sliced_list():
    _, storage, _ = _native_arrays()[4]
    two = pa.concat_arrays([storage, storage]).slice(1)
    assert len(normalize_geometries(two)) == 1


def test_geoparquet_metadata_drives_auto_and_column():
    poly = shapely.box(500000, 5800000, 501000, 5801000)
    geo = {
        "version": "1.1.0",
        "primary_column": "geom",
        "columns": {"geom": {"encoding": "WKB", "geometry_types": [], "crs": UTM33.to_json_dict()}},
    }
    table = pa.table({"id": [1], "geom": [shapely.to_wkb(poly)], "geometry": [shapely.to_wkb(PT)]})
    table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    aois = normalize_geometries(table)
    assert aois.geometries[0].equals(poly)
    assert aois.crs == UTM33
    assert aois.attributes.column_names == ["id", "geometry"]
    assert aois.attributes.schema.metadata is None
    # explicit column; its (absent) GeoParquet entry -> default
    other = normalize_geometries(table, geometry_column="geometry")
    assert other.geometries[0].equals(PT)
    assert other.crs == WGS84
    # crs key absent: OGC:CRS84 per GeoParquet; crs null: unknown -> EPSG:4326
    geo["columns"]["geom"].pop("crs")
    t2 = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    assert normalize_geometries(t2).crs == pyproj.CRS.from_user_input("OGC:CRS84")
    geo["columns"]["geom"]["crs"] = None
    t3 = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    assert normalize_geometries(t3).crs == WGS84


def test_geoparquet_file_roundtrip(tmp_path):
    gpd = pytest.importorskip("geopandas")
    gdf = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[BOX, PT], crs=3857)
    path = tmp_path / "aoi.parquet"
    gdf.to_parquet(path)
    import pyarrow.parquet as pq

    aois = normalize_geometries(pq.read_table(path))
    assert aois.crs.to_epsg() == 3857
    assert aois.attributes.to_pylist() == [{"name": "a"}, {"name": "b"}]


def test_table_default_geometry_column():
    table = pa.table({"geometry": [shapely.to_wkb(PT)], "v": [1.5]})
    aois = normalize_geometries(table)
    assert aois.geometries[0].equals(PT)
    assert aois.attributes.to_pylist() == [{"v": 1.5}]


def test_geodataframe_and_geoseries():
    gpd = pytest.importorskip("geopandas")
    gdf = gpd.GeoDataFrame({"name": ["a", "b"], "n": [1, 2]}, geometry=[BOX, PT], crs="EPSG:32633")
    aois = normalize_geometries(gdf)
    assert aois.crs == UTM33
    assert [g.wkt for g in aois.geometries] == [BOX.wkt, PT.wkt]
    assert aois.attributes.to_pylist() == [{"name": "a", "n": 1}, {"name": "b", "n": 2}]
    assert normalize_geometries(gdf, geometry_crs=4326).crs == WGS84
    assert normalize_geometries(gdf.geometry).crs == UTM33
    nocrs = gpd.GeoDataFrame({"a": [1]}, geometry=[BOX])
    assert normalize_geometries(nocrs).crs == WGS84
    # a second geometry column, chosen explicitly; the other one is left out
    gdf2 = gdf.assign(centroid=gpd.GeoSeries([PT, PT], crs="EPSG:32633"))
    aois = normalize_geometries(gdf2, geometry_column="centroid")
    assert aois.geometries == [PT, PT]
    assert aois.attributes.column_names == ["name", "n"]


def test_duckdb_relation():
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    wkb = shapely.to_wkb(BOX)
    rel = con.sql("select 7 as id, $1::BLOB as geometry", params=[wkb])
    aois = normalize_geometries(rel, geometry_crs="EPSG:4326")
    assert aois.geometries[0].equals(BOX)
    assert aois.attributes.to_pylist() == [{"id": 7}]
    rel = con.sql("select $1::BLOB as g", params=[wkb])
    assert normalize_geometries(rel, geometry_column="g").geometries[0].equals(BOX)


class _ArrowStream:
    """Anything exporting an Arrow C stream (polars, duckdb, ...)."""

    def __init__(self, table: pa.Table):
        self.table = table

    def __arrow_c_stream__(self, requested_schema=None):
        return self.table.__arrow_c_stream__(requested_schema)


def test_arrow_stream_exporter():
    aois = normalize_geometries(_ArrowStream(pa.table({"geometry": [shapely.to_wkb(PT)]})))
    assert aois.geometries[0].equals(PT)


def test_geometry_crs_forms():
    for crs in (32633, "EPSG:32633", UTM33.to_wkt(), UTM33.to_json_dict(), UTM33, UTM33.to_json()):
        assert normalize_geometries(BOX, geometry_crs=crs).crs == UTM33
    assert normalize_geometries(BOX, geometry_crs=AUTO).crs == WGS84
    assert repr(AUTO) == "AUTO"
    assert pickle.loads(pickle.dumps(AUTO)) is AUTO


# --------------------------------------------------------------------------- reprojection


def test_to_crs_moves_vertices_densifies_on_request_and_bounds():
    box = shapely.box(-10.0, 40.0, 10.0, 60.0)
    # By default the vertices, as GDAL's transform_geom (and rasteret).
    [plain] = to_crs([box], 4326, 32631)
    tr = pyproj.Transformer.from_crs(4326, 32631, always_xy=True)
    xy = shapely.get_coordinates(box)
    np.testing.assert_allclose(shapely.get_coordinates(plain), np.column_stack(tr.transform(*xy.T)))
    [g] = to_crs([box], 4326, 32631, densify=True)
    assert len(shapely.get_coordinates(g)) > 100  # densified
    b = bounds_in_crs(box, 4326, 32631)
    # the south edge bulges south in UTM: its middle is below the corners
    corners = tr.transform([-10, 10], [40, 40])
    assert b[1] < min(corners[1]) - 1000
    assert b[1] == pytest.approx(tr.transform(3, 40)[1], abs=1)
    # round trip
    [back] = to_crs([g], 32631, 4326)
    np.testing.assert_allclose(back.bounds, box.bounds, atol=1e-6)
    # same CRS: the same objects
    assert to_crs([box], 4326, "EPSG:4326")[0] is box
    assert bounds_in_crs(box, 4326, 4326) == box.bounds
    assert to_crs([], 4326, 3857) == []
    aois = normalize_geometries(box).to_crs(32631)
    assert aois.crs.to_epsg() == 32631 and aois.geometries[0].equals(plain)


def test_to_crs_outside_domain():
    with pytest.raises(GeometryInputError, match="cannot be transformed"):
        to_crs([shapely.Point(0, 95)], 4326, 3857)


# --------------------------------------------------------------------------- errors


def test_invalid_geometry_is_kept_as_given_with_a_warning_naming_it():
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with pytest.warns(
        InvalidGeometryWarning,
        match=r"geometry 1 \(Polygon\) is invalid: Self-intersection.*rasterized as given",
    ):
        aois = normalize_geometries([BOX, bowtie, bowtie])
    assert aois.geometries[1].equals_exact(bowtie, 0)  # not repaired
    # Projecting does not repair it either (GDAL burns the rings as given).
    with pytest.warns(InvalidGeometryWarning, match=r"and 1 more"):
        lonlat = normalize_geometries([bowtie.buffer(0), bowtie, bowtie])
    moved = lonlat.to_crs(32633).geometries[1]
    assert moved.geom_type == "Polygon" and not moved.is_valid


def test_error_empty_geometry_names_index():
    with pytest.raises(EmptyGeometryError, match="geometry 2 is empty"):
        normalize_geometries([BOX, PT, shapely.Polygon()])
    with pytest.raises(EmptyGeometryError, match="geometry 1 is null"):
        normalize_geometries([BOX, None])
    with pytest.raises(EmptyGeometryError, match="geometry 1 is null"):
        normalize_geometries(pa.array([shapely.to_wkb(BOX), None]))
    with pytest.raises(EmptyGeometryError, match="no geometries"):
        normalize_geometries([])
    with pytest.raises(EmptyGeometryError, match="no features"):
        normalize_geometries({"type": "FeatureCollection", "features": []})
    with pytest.raises(EmptyGeometryError, match="geometry 0 is null"):
        normalize_geometries({"type": "Feature", "properties": {}, "geometry": None})
    with pytest.raises(EmptyGeometryError, match="no geometries"):
        normalize_geometries(pa.array([], pa.binary()))


def test_error_unsupported_type_lists_accepted_forms():
    for bad in (None, 42, object(), {1, 2}, "POINT (1 2)", [1, 2, 3]):
        with pytest.raises(UnsupportedGeometryInputError, match="accepted|Accepted") as exc:
            normalize_geometries(bad)
        assert isinstance(exc.value, TypeError)
    with pytest.raises(UnsupportedGeometryInputError, match="without 'type'"):
        normalize_geometries({"coordinates": [1, 2]})
    with pytest.raises(UnsupportedGeometryInputError, match="Arrow array of type int64"):
        normalize_geometries(pa.array([1, 2]))


def test_error_bbox():
    with pytest.raises(GeometryInputError, match="xmin > xmax"):
        normalize_geometries((10, 0, 5, 1))
    with pytest.raises(GeometryInputError, match="ymin > ymax"):
        normalize_geometries((0, 10, 5, 1))
    with pytest.raises(EmptyGeometryError, match="zero width"):
        normalize_geometries((0, 0, 0, 1))
    with pytest.raises(GeometryInputError, match="non-finite"):
        normalize_geometries((0, 0, float("nan"), 1))


def test_error_missing_geometry_column_lists_columns():
    table = pa.table({"a": [1], "geometry": [shapely.to_wkb(PT)]})
    with pytest.raises(GeometryInputError, match=r"'geom' is not a column.*\['a', 'geometry'\]"):
        normalize_geometries(table, geometry_column="geom")
    with pytest.raises(GeometryInputError, match=r"no geometry column found.*\['a'\]"):
        normalize_geometries(pa.table({"a": [1]}))
    gpd = pytest.importorskip("geopandas")
    gdf = gpd.GeoDataFrame({"a": [1]}, geometry=[PT])
    with pytest.raises(GeometryInputError, match=r"'geom' is not a column.*\['a', 'geometry'\]"):
        normalize_geometries(gdf, geometry_column="geom")


def test_error_bad_wkb_and_geojson_and_crs():
    with pytest.raises(GeometryInputError, match="geometry 0 is not valid WKB"):
        normalize_geometries(b"\x01\x02garbage")
    with pytest.raises(GeometryInputError, match="geometry 1 is not valid WKB"):
        normalize_geometries([shapely.to_wkb(PT), b"nope"])
    with pytest.raises(GeometryInputError, match="not WKB.*ST_AsWKB"):
        normalize_geometries(pa.array([b"nope"]))
    with pytest.raises(GeometryInputError, match="not a valid GeoJSON geometry"):
        normalize_geometries({"type": "Polygon", "coordinates": "x"})
    with pytest.raises(GeometryInputError, match="geometry_crs 'EPSG:99999999' is not a CRS"):
        normalize_geometries(BOX, geometry_crs="EPSG:99999999")
    bad_meta = _geoarrow_field("g", pa.binary(), "geoarrow.wkb")
    bad_meta = bad_meta.with_metadata(
        {**bad_meta.metadata, b"ARROW:extension:metadata": b"{not json"}
    )
    with pytest.raises(GeometryInputError, match="not JSON"):
        normalize_geometries(
            pa.table([pa.array([shapely.to_wkb(PT)])], schema=pa.schema([bad_meta]))
        )
    with pytest.raises(UnsupportedGeometryInputError, match="not a GeoArrow geometry type"):
        other = _geoarrow_field("g", pa.binary(), "arrow.opaque")
        normalize_geometries(
            pa.table([pa.array([b"x"])], schema=pa.schema([other])), geometry_column="g"
        )
