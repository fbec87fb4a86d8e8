"""geometry_mask against rasterio.features.geometry_mask (GDAL), pixel for pixel."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import shapely
import shapely.affinity
from affine import Affine

from xarray_rasteret.geo._burn import lines_bresenham as _lines_bresenham
from xarray_rasteret.geo._burn import walk as _walk
from xarray_rasteret.geo.rasterize import (
    _rasterize,
    geometry_mask,
    rasterize_inside,
)

rio_features = pytest.importorskip("rasterio.features")

TRANSFORMS = {
    "utm10m": Affine(10, 0, 500000, 0, -10, 4200000),
    "deg1e-4": Affine(0.0001, 0, 13.0003, 0, -0.0001, 52.1),
    "south_up": Affine(10, 0, 500000, 0, 10, 4100000),
    "odd": Affine(0.3, 0, -7.1, 0, -0.3, 3.3),
    "landsat30m": Affine(30, 0, 399960, 0, -30, 5000040),
}
H, W = 40, 50


def _world(t: Affine, x: float, y: float) -> tuple[float, float]:
    return (t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f)


def rio_mask(geoms, shape, transform, all_touched):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio warns about skipped empty shapes
        return rio_features.geometry_mask(geoms, shape, transform, all_touched=all_touched)


def ours_exact(geoms, shape, transform, all_touched):
    """Our mask, with GDAL's out-of-row writes reproduced (see _walk)."""
    return ~_rasterize(geoms, shape, transform, all_touched, wrap_overflow=True)


def _random_shape(rng: np.random.Generator, t: Affine, i: int):
    """One random geometry of the i-th kind, in the world coordinates of t."""
    cx, cy = rng.uniform(-5, W + 5), rng.uniform(-5, H + 5)
    r = rng.choice([0.2, 0.6, 3.0, 10.0, 30.0])  # includes sub-pixel polygons
    k = int(rng.integers(3, 9))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    rad = r * rng.uniform(0.3, 1, k)
    pts = np.c_[cx + rad * np.cos(ang), cy + rad * np.sin(ang)]
    q = rng.choice([0.5, 1.0, 0.25, 0.0])  # snap: vertices on centres / pixel boundaries
    if q:
        pts = np.round(pts / q) * q
    kind = i % 7
    if kind == 5:  # grid-aligned box, edges through centres or on boundaries
        x0, y0 = np.round(np.array([cx, cy]) * 2) / 2
        w, h = np.round(rng.uniform(0.5, 20, 2) * 2) / 2
        pts = np.array([[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]])
    wpts = [_world(t, float(x), float(y)) for x, y in pts]
    g = shapely.Polygon(wpts)
    if not g.is_valid:
        g = shapely.convex_hull(g)
    if g.is_empty or g.geom_type != "Polygon":
        return None
    if kind == 1:  # hole
        g2 = g.difference(shapely.affinity.scale(g, 0.5, 0.5))
        if g2.geom_type == "Polygon" and not g2.is_empty:
            g = g2
    elif kind == 2:  # multipolygon
        other = shapely.affinity.translate(
            g, t.a * int(rng.integers(-20, 20)), t.e * int(rng.integers(-20, 20))
        )
        mp = shapely.MultiPolygon([g, other])
        g = mp if mp.is_valid else g
    elif kind == 3:
        g = g.exterior if rng.random() < 0.5 else shapely.LineString(wpts)
    elif kind == 4:
        g = shapely.MultiPoint(wpts)
    elif kind == 6:  # concave: a star
        ang = np.linspace(0, 2 * np.pi, 11)[:-1]
        rr = np.where(np.arange(10) % 2 == 0, r, r * 0.4)
        g = shapely.Polygon(
            [
                _world(t, cx + a * math.cos(b), cy + a * math.sin(b))
                for a, b in zip(rr, ang, strict=True)
            ]
        )
    return g


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_random_geometries_match_rasterio(name):
    t = TRANSFORMS[name]
    rng = np.random.default_rng(sorted(TRANSFORMS).index(name))
    compared = 0
    for i in range(280):
        g = _random_shape(rng, t, i)
        if g is None:
            continue
        for at in (False, True):
            expected = rio_mask([g], (H, W), t, at)
            got = ours_exact([g], (H, W), t, at)
            np.testing.assert_array_equal(got, expected, err_msg=f"{name} {i} {at} {g.wkt}")
            compared += 1
    assert compared > 450


def test_many_geometries_at_once_and_public_function():
    t = TRANSFORMS["utm10m"]
    rng = np.random.default_rng(42)
    geoms = [g for i in range(60) if (g := _random_shape(rng, t, i)) is not None]
    for at in (False, True):
        for invert in (False, True):
            expected = rio_features.geometry_mask(geoms, (H, W), t, all_touched=at, invert=invert)
            got = geometry_mask(geoms, out_shape=(H, W), transform=t, all_touched=at, invert=invert)
            assert got.dtype == np.bool_
            # The public function drops GDAL's out-of-row writes (see _walk); none here
            # or they are the only difference.
            diff = got != expected
            if diff.any():
                exact = ~_rasterize(geoms, (H, W), t, at, wrap_overflow=True)
                np.testing.assert_array_equal(exact if not invert else ~exact, expected)


TIE_CASES = [
    # grid-aligned boxes: edges exactly through pixel centres
    shapely.box(2.5, 3.5, 10.5, 9.5),
    # edges exactly on pixel boundaries
    shapely.box(2, 3, 10, 9),
    # mixed, and vertices on centres
    shapely.box(2.5, 3, 10, 9.5),
    shapely.Polygon([(5.5, 5.5), (15.5, 5.5), (10.5, 15.5)]),
    shapely.Polygon([(5, 5), (15, 5), (10, 15)]),
    # diagonal edges through pixel corners and centres
    shapely.Polygon([(0, 0), (20, 20), (0, 20)]),
    shapely.Polygon([(0.5, 0.5), (20.5, 20.5), (0.5, 20.5)]),
    # right-to-left horizontal edges on a scanline (GDAL's separate horizontal fill)
    shapely.Polygon([(3, 2.5), (12, 2.5), (12, 8.5), (8, 8.5), (8, 5.5), (3, 5.5)]),
    # hole with edges on centres
    shapely.Polygon(
        shapely.box(1, 1, 20, 20).exterior, [shapely.box(5.5, 5.5, 10.5, 10.5).exterior]
    ),
    # smaller than a pixel, containing / not containing a centre
    shapely.box(3.2, 3.2, 3.8, 3.8),
    shapely.box(3.6, 3.6, 3.9, 3.9),
    # partly outside the window, on every side
    shapely.box(-5.5, -5.5, 3.5, 3.5),
    shapely.box(45.5, 35.5, 60, 50),
    shapely.Polygon([(-10, 20), (25, -10), (60, 20), (25, 50)]),
    # lines: axis-aligned on centres / on boundaries, diagonals through corners
    shapely.LineString([(0.5, 0.5), (10.5, 0.5)]),
    shapely.LineString([(0, 2), (10, 2)]),
    shapely.LineString([(3, 0), (3, 10)]),
    shapely.LineString([(0, 0), (10, 10), (20, 0)]),
    shapely.LineString([(0, 0), (30, 10)]),
    shapely.LineString([(-5, -5), (60, 50)]),
    shapely.LinearRing([(2, 2), (12, 2), (12, 7), (2, 2)]),
    shapely.MultiLineString([[(1, 1), (5, 30)], [(40, 2), (2, 39)]]),
    # points on pixel corners, centres, window edges
    shapely.MultiPoint([(0, 0), (0.5, 0.5), (49.999, 39.999), (50, 40), (10, 10.5)]),
    shapely.Point(-0.0, 3),
    shapely.GeometryCollection([shapely.Point(1.5, 1.5), shapely.box(20, 20, 25.5, 25.5)]),
]


@pytest.mark.parametrize("name", ["utm10m", "deg1e-4", "south_up", "odd"])
@pytest.mark.parametrize("all_touched", [False, True])
@pytest.mark.parametrize("case", range(len(TIE_CASES)))
def test_tie_cases(case, all_touched, name):
    t = TRANSFORMS[name]
    g = shapely.affinity.affine_transform(TIE_CASES[case], t.to_shapely())
    expected = rio_mask([g], (H, W), t, all_touched)
    np.testing.assert_array_equal(ours_exact([g], (H, W), t, all_touched), expected)


def test_gdal_out_of_row_write_is_dropped_by_default():
    # A segment leaving the grid through the bottom right makes GDAL write past the
    # row end: pixel (1, 6) below, far from the polygon. We drop that write.
    t = Affine(10, 0, 500000, 0, 10, 4100000)
    g = shapely.from_wkt(
        "POLYGON ((500530 4100260, 500260 4100060, 500500 4099930, 500600 4100040, 500530 4100260))"
    )
    expected = rio_mask([g], (H, W), t, True)
    got = geometry_mask([g], out_shape=(H, W), transform=t, all_touched=True)
    assert np.argwhere(got != expected).tolist() == [[1, 6]]
    assert not expected[1, 6] and got[1, 6]
    np.testing.assert_array_equal(ours_exact([g], (H, W), t, True), expected)


def test_large_window_many_polygons_matches():
    rng = np.random.default_rng(3)
    t = TRANSFORMS["utm10m"]
    h = w = 1500
    polys = []
    for _ in range(50):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(20, 600)
        ang = np.sort(rng.uniform(0, 2 * np.pi, 40))
        rad = r * rng.uniform(0.5, 1, 40)
        polys.append(
            shapely.Polygon(
                [
                    _world(t, cx + a * math.cos(b), cy + a * math.sin(b))
                    for a, b in zip(rad, ang, strict=True)
                ]
            )
        )
    for at in (False, True):
        np.testing.assert_array_equal(
            ours_exact(polys, (h, w), t, at), rio_mask(polys, (h, w), t, at)
        )


def test_geojson_mappings_and_empty_inputs():
    t = TRANSFORMS["utm10m"]
    g = shapely.box(500020, 4199800, 500200, 4199950)
    expected = rio_mask([g], (H, W), t, False)
    for inp in (
        g,
        [g],
        [shapely.geometry.mapping(g)],
        shapely.geometry.mapping(g),
        [{"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(g)}],
        [shapely.to_wkb(g)],
    ):
        np.testing.assert_array_equal(geometry_mask(inp, out_shape=(H, W), transform=t), expected)
    assert geometry_mask([], out_shape=(H, W), transform=t).all()
    assert geometry_mask([shapely.Polygon(), None], out_shape=(H, W), transform=t).all()
    assert rasterize_inside([g], out_shape=(0, 5), transform=t).shape == (0, 5)
    with pytest.raises(TypeError, match="geometry 0 is a int"):
        geometry_mask([3], out_shape=(H, W), transform=t)
    with pytest.raises(ValueError, match="not invertible"):
        geometry_mask([g], out_shape=(H, W), transform=Affine(0, 0, 0, 0, 0, 0))


def _bresenham_reference(x0, y0, x1, y1):
    """GDALdllImageLine's integer loop, one segment, endpoint included."""
    dx, dy = abs(x1 - x0), abs(y1 - y0)
    sx = -1 if x0 > x1 else 1
    sy = -1 if y0 > y1 else 1
    out = []
    if dx >= dy:
        e_x, e_y, err = 2 * dy, 2 * dy - 2 * dx, 2 * dy - dx
        for _ in range(dx + 1):
            out.append((y0, x0))
            x0 += sx
            if err > 0:
                y0 += sy
                err += e_y
            else:
                err += e_x
    else:
        e_x, e_y, err = 2 * dx, 2 * dx - 2 * dy, 2 * dx - dy
        for _ in range(dy + 1):
            out.append((y0, x0))
            y0 += sy
            if err > 0:
                x0 += sx
                err += e_y
            else:
                err += e_x
    return out


def test_bresenham_closed_form_equals_integer_loop():
    rng = np.random.default_rng(7)
    for _ in range(400):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(-5, 60, 4))
        ref = {p for p in _bresenham_reference(x0, y0, x1, y1) if 0 <= p[0] < 50 and 0 <= p[1] < 50}
        [(rows, cols)] = _lines_bresenham(
            np.array([x0 + 0.3, x1 + 0.7]), np.array([y0 + 0.1, y1 + 0.9]), np.array([0, 2]), 50, 50
        ) or [(np.zeros(0, int), np.zeros(0, int))]
        assert set(zip(rows.tolist(), cols.tolist(), strict=True)) == ref


def test_walk_scalar_and_vector_paths_agree(monkeypatch):
    import xarray_rasteret.geo._burn as rz

    rng = np.random.default_rng(11)
    n = 200
    x = rng.uniform(-10, 60, n)
    xe = x + rng.uniform(0.5, 40, n)
    y = rng.uniform(-10, 60, n)
    ye = y + rng.uniform(-40, 40, n)
    ye[np.abs(ye - y) < 1.5] += 3
    monkeypatch.setattr(rz, "_SCALAR_WALK_BELOW", 0)
    r1, c1 = _walk(x, y, xe, ye, 50, 50)
    monkeypatch.setattr(rz, "_SCALAR_WALK_BELOW", 10**9)
    r2, c2 = _walk(x, y, xe, ye, 50, 50)
    assert sorted(zip(r1.tolist(), c1.tolist(), strict=True)) == sorted(
        zip(r2.tolist(), c2.tolist(), strict=True)
    )
