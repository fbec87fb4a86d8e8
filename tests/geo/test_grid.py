import pytest
from affine import Affine

from xarray_rasteret._types import Window
from xarray_rasteret.errors import ReprojectionRequiredError, UnsupportedTiffError
from xarray_rasteret.geo.grid import RasterGrid, union_grid


def grid(x0, y0, w=100, h=80, res=10.0, crs="EPSG:32633"):
    return RasterGrid(crs, Affine(res, 0, x0, 0, -res, y0), w, h)


def test_union_of_aligned_grids_and_windows():
    a = grid(500000, 4000000)
    b = grid(500500, 3999800)
    u = union_grid([a, b])
    assert u.transform == Affine(10, 0, 500000, 0, -10, 4000000)
    assert u.shape == (100, 150)
    assert u.window_of(b) == Window(20, 100, 50, 150)


def test_union_rejects_misaligned_and_other_crs():
    with pytest.raises(ReprojectionRequiredError, match="different pixel grid"):
        union_grid([grid(500000, 4000000), grid(500005, 4000000)])
    with pytest.raises(ReprojectionRequiredError, match="crs=..."):
        union_grid([grid(500000, 4000000), grid(500000, 4000000, crs="EPSG:32634")])
    with pytest.raises(ReprojectionRequiredError):
        union_grid([grid(500000, 4000000), grid(500000, 4000000, res=20)])


def test_same_crs_in_other_spelling_is_aligned():
    from pyproj import CRS

    a = grid(0, 0)
    b = grid(0, 0, crs=CRS.from_epsg(32633).to_wkt())
    assert a.is_aligned_with(b)


def test_window_for_bounds_snaps_outwards():
    g = grid(0, 1000)
    assert g.window_for_bounds((15, 905, 35, 995)) == Window(0, 10, 1, 4)
    assert g.window_for_bounds((10, 900, 30, 1000)) == Window(0, 10, 1, 3)


def test_coords_are_pixel_centres_south_up_too():
    x, y = grid(0, 1000, w=2, h=2).xy_coords()
    assert list(x) == [5, 15] and list(y) == [995, 985]
    south = RasterGrid(None, Affine(1, 0, 0, 0, 1, 0), 2, 2)
    assert list(south.xy_coords()[1]) == [0.5, 1.5]


def test_rotated_transform_rejected():
    with pytest.raises(UnsupportedTiffError, match="rotated"):
        RasterGrid("EPSG:4326", Affine(1, 0.1, 0, 0, -1, 0), 2, 2)


def test_crs_objects_and_transformers_are_made_once():
    from pyproj import CRS

    from xarray_rasteret.geo.crs import as_crs, projection, transformer

    assert as_crs("EPSG:32633") is as_crs("EPSG:32633")
    assert as_crs(CRS.from_epsg(4326)) == CRS.from_epsg(4326)
    t = transformer("EPSG:32633", "EPSG:4326")
    assert t is transformer("EPSG:32633", "EPSG:4326")
    x, y = t.transform(500000.0, 0.0)
    assert abs(x - 15.0) < 1e-9 and abs(y) < 1e-9
    assert projection("EPSG:32633", "EPSG:32633") is None
    assert projection(32633, "EPSG:4326") is not None
    # Equal CRSs give a no-op transformer, not an error.
    assert transformer(4326, "EPSG:4326").transform(1.5, 2.5) == (1.5, 2.5)


# Pairs of projections of one geodetic CRS (joined without PROJ's search) and of
# different ones (searched): UTM north/south of WGS 84, Web Mercator, NAD83 in feet
# and metres, ETRS89 LAEA against RGF93 Lambert and WGS 84.
# A projection and its own base in either axis order (one half, also without the
# search), and against another datum's geographic CRS (searched).
_PAIRS = [(32632, 32633), (32733, 32632), (32601, 32660), (3857, 32633), (2263, 26918),
          (26918, 5070), (3035, 2154), (3035, 32633), (32633, 4326), (4326, 32633),
          (32633, "OGC:CRS84"), ("OGC:CRS84", 32734), (3857, "OGC:CRS84"), (2263, 4269),
          (4258, 3035), (2263, "OGC:CRS84"), (3035, "OGC:CRS84"), (2154, 4326)]


@pytest.mark.parametrize(("src", "dst"), _PAIRS)
def test_transformers_are_the_ones_proj_picks(src, dst):
    import numpy as np
    from pyproj import Transformer

    from xarray_rasteret.geo.crs import transformer

    ours = transformer(*(c if isinstance(c, str) else f"EPSG:{c}" for c in (src, dst)))
    proj = Transformer.from_crs(src, dst, always_xy=True)
    assert ours.definition == proj.definition
    # Points inside both CRSs' areas of use.
    lon0, lat0, lon1, lat1 = proj.area_of_use.bounds if proj.area_of_use else (-180, -80, 180, 80)
    to_src = Transformer.from_crs(4326, src, always_xy=True)
    lon = np.linspace(lon0, lon1, 7)[1:-1]
    lat = np.linspace(max(lat0, -80), min(lat1, 84), 7)[1:-1]
    x, y = to_src.transform(*np.meshgrid(lon, lat))
    np.testing.assert_array_equal(ours.transform(x, y), proj.transform(x, y))


def test_every_spelling_of_one_crs_shares_one_cache_key_and_transformer():
    from pyproj import CRS

    from xarray_rasteret.geo.crs import cache_key, transformer

    wkt = CRS.from_epsg(32634).to_wkt()
    spellings = ["EPSG:32634", "epsg:32634", 32634, wkt, CRS.from_epsg(32634), CRS.from_wkt(wkt)]
    assert {cache_key(s) for s in spellings} == {"EPSG:32634"}
    assert len({id(transformer("EPSG:32633", s)) for s in spellings}) == 1
    # A CRS that names no EPSG code keeps its own definition as key.
    custom = "+proj=utm +zone=34 +ellps=GRS80 +units=m +no_defs"
    assert cache_key(custom) == custom and cache_key(None) is None
    x, y = transformer(custom, "EPSG:32634").transform(500000.0, 0.0)
    assert abs(x - 500000.0) < 1e-6 and abs(y) < 1e-6
