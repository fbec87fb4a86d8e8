"""Registered catalogues: the STAC APIs ``build("earthsearch/sentinel-2-l2a", ...)`` searches.

A catalogue id names a STAC API, one collection on it, the band codes its
records get and the data source (:mod:`xarray_rasteret.data_sources`, by name)
that reads them. The ids are rasteret 0.4.1's, so its calls work here::

    build("earthsearch/sentinel-2-l2a", bbox=(...), date_range=("2024-06-01", "2024-06-30"))

Examples
--------
>>> from xarray_rasteret.catalogues import Catalogue, register
>>> register(Catalogue(  # doctest: +SKIP
...     "acme/field-survey", stac_api="https://stac.acme.example/v1", collection="survey"
... ))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Catalogue", "get", "register", "registered"]


@dataclass(frozen=True)
class Catalogue:
    """One searchable collection on a STAC API.

    Parameters
    ----------
    id
        Registry key, ``"namespace/collection"`` (``"earthsearch/sentinel-2-l2a"``).
    stac_api
        The STAC API root URL (``build(..., stac_api=)`` overrides it).
    collection
        The STAC collection id searched.
    data_source
        Name of the :mod:`~xarray_rasteret.data_sources` entry that reads these
        records (band codes, href rewriting, signing), or None.
    band_map
        Band code -> asset key. A build names its bands by the codes (as
        rasteret does: ``B04``, not ``red``) and indexes only mapped assets;
        ``bands=`` takes codes or asset keys. Empty: asset keys as they are.
    href_prefixes
        Href prefix -> replacement, applied at build time and stored (a fixed
        mirror, e.g. USGS Landsat's ``https://landsatlook.usgs.gov/data/`` ->
        ``s3://usgs-landsat/``; never for tokens, which are applied at read time).
    storage_options
        Defaults under the caller's ``storage_options`` (e.g. ``requester_pays``).
    name
        A human-readable title.
    """

    id: str
    stac_api: str
    collection: str
    data_source: str | None = None
    band_map: Mapping[str, str] = field(default_factory=dict)
    href_prefixes: Mapping[str, str] = field(default_factory=dict)
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        # Frozen in earnest: a registered entry's maps cannot change under the registry.
        for attr in ("band_map", "href_prefixes", "storage_options"):
            object.__setattr__(self, attr, MappingProxyType(dict(getattr(self, attr))))
        if not self.id or not self.stac_api or not self.collection:
            raise ValueError(
                f"a Catalogue needs an id, a stac_api URL and a collection id; got "
                f"id={self.id!r}, stac_api={self.stac_api!r}, collection={self.collection!r}"
            )


_REGISTRY: dict[str, Catalogue] = {}


def register(catalogue: Catalogue, *, replace: bool = False) -> None:
    """Add ``catalogue`` to the registry.

    Parameters
    ----------
    catalogue
        The entry.
    replace
        Overwrite an entry of the same id (else ValueError).

    Raises
    ------
    ValueError
        If the id is registered already and ``replace`` is False.
    """
    if catalogue.id in _REGISTRY and not replace:
        raise ValueError(f"catalogue {catalogue.id!r} is registered already; pass replace=True")
    _REGISTRY[catalogue.id] = catalogue


def registered() -> list[str]:
    """Ids of the registered catalogues."""
    return sorted(_REGISTRY)


def get(catalogue_id: str) -> Catalogue:
    """The registered catalogue ``catalogue_id``.

    Raises
    ------
    KeyError
        Naming the registered ids.
    """
    try:
        return _REGISTRY[catalogue_id]
    except KeyError:
        raise KeyError(
            f"unknown catalogue id {catalogue_id!r}; registered: {registered()} (add yours "
            "with xarray_rasteret.catalogues.register, or search any STAC API with stac_api=)"
        ) from None


def namespaces() -> set[str]:
    """The ``namespace/`` parts of the registered ids (to tell a mistyped id from a path)."""
    return {cid.split("/", 1)[0] for cid in _REGISTRY if "/" in cid}


_EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
_PLANETARY_COMPUTER = "https://planetarycomputer.microsoft.com/api/stac/v1"

# rasteret 0.4.1's band maps (catalog.py): the codes its collections carry.
_S2_ES = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1",
    "B06": "rededge2", "B07": "rededge3", "B08": "nir", "B8A": "nir08", "B09": "nir09",
    "B11": "swir16", "B12": "swir22", "SCL": "scl",
}  # fmt: skip
_S2_PC = {code: code for code in _S2_ES}
_LANDSAT = {
    "B1": "coastal", "B2": "blue", "B3": "green", "B4": "red", "B5": "nir08",
    "B6": "swir16", "B7": "swir22", "qa_aerosol": "qa_aerosol", "qa_pixel": "qa_pixel",
    "qa_radsat": "qa_radsat",
}  # fmt: skip

for _entry in (
    Catalogue(
        "earthsearch/sentinel-2-l2a",
        stac_api=_EARTH_SEARCH,
        collection="sentinel-2-l2a",
        data_source="sentinel-2-l2a/earth-search",
        band_map=_S2_ES,
        name="Sentinel-2 Level-2A (Earth Search)",
    ),
    Catalogue(
        "earthsearch/landsat-c2-l2",
        stac_api=_EARTH_SEARCH,
        collection="landsat-c2-l2",
        data_source="landsat-c2-l2/earth-search",
        band_map=_LANDSAT,
        # Earth Search's hrefs point at USGS's web portal; the bytes are in the
        # requester-pays bucket (rasteret 0.4.1 rewrites them the same way).
        href_prefixes={"https://landsatlook.usgs.gov/data/": "s3://usgs-landsat/"},
        storage_options={"requester_pays": True, "region_name": "us-west-2"},
        name="Landsat Collection 2 Level-2 (Earth Search)",
    ),
    Catalogue(
        "pc/sentinel-2-l2a",
        stac_api=_PLANETARY_COMPUTER,
        collection="sentinel-2-l2a",
        data_source="sentinel-2-l2a/planetary-computer",
        band_map=_S2_PC,
        name="Sentinel-2 Level-2A (Planetary Computer)",
    ),
    # Not in rasteret 0.4.1; its id follows rasteret's naming.
    Catalogue(
        "pc/landsat-c2-l2",
        stac_api=_PLANETARY_COMPUTER,
        collection="landsat-c2-l2",
        data_source="landsat-c2-l2/planetary-computer",
        band_map={**_LANDSAT, "B10": "lwir11"},
        name="Landsat Collection 2 Level-2 (Planetary Computer)",
    ),
):
    register(_entry)
