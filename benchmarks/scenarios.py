"""The scenarios, stated once as per-file work units every tool executes its own way.

A scenario is a list of :class:`Unit` (one per file: what to read from it)
plus the layout of the result. The peers run the units (one open per file);
xarray-rasteret reads the same pixels through its own API; the floor is the
set of tiles the units touch. Every tool returns the array built by
:func:`assemble`'s layout so the results can be compared pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine

from .data import Manifest, Scene

__all__ = ["SCENARIOS", "Scenario", "Unit", "make_scenario"]

SCENARIOS = {
    "Build": "collection build (header parsing) of every file vs opening every file",
    "S1": "time series: one 256x256 AOI x all main-grid scenes x B04, B08",
    "S2": "many AOIs: every S2 AOI x all main-grid scenes x B04",
    "S3": "cross-CRS: AOIs onto EPSG:32633 from main-grid and neighbouring-zone scenes, "
    "B04, nearest",
    "S4": "full band: all of B04 of one scene (decode-bound)",
    "S5": "points: every point x all main-grid scenes x B04",
    "M": "memory: all of B04 of every main-grid scene (peak RSS vs output size)",
}


@dataclass
class Unit:
    """Work on one file.

    Attributes
    ----------
    file
        Path relative to the served root.
    scene
        The scene the file belongs to.
    band
        Band name.
    windows
        ``(row, col, height, width)`` pixel windows (kind ``"windows"``).
    warps
        ``(dst_transform, height, width)`` on the main grid (kind ``"warp"``).
    points
        ``(x, y)`` arrays, EPSG:32633 (kind ``"sample"``).
    kind
        ``"windows"``, ``"warp"``, ``"sample"``, ``"whole"`` or ``"profile"``.
    slots
        Where each result goes in the scenario's output array (an index tuple per
        window / warp; one index for the other kinds).
    """

    file: str
    scene: Scene
    band: str
    kind: str
    windows: list[tuple[int, int, int, int]] = field(default_factory=list)
    warps: list[tuple[Affine, int, int]] = field(default_factory=list)
    points: tuple[np.ndarray, np.ndarray] | None = None
    slots: list[Any] = field(default_factory=list)


@dataclass
class Scenario:
    """A named request: units, output shape and dtype."""

    name: str
    units: list[Unit]
    shape: tuple[int, ...]
    dtype: Any = np.uint16

    def empty(self) -> np.ndarray:
        """The output array, zero-filled."""
        return np.zeros(self.shape, self.dtype)


def _main_transform(m: Manifest) -> Affine:
    return Affine(*m.main[0].transform)


def make_scenario(name: str, m: Manifest) -> Scenario:
    """Build scenario ``name`` for the data in ``m``.

    Output layouts: S1 ``(band, time, y, x)``; S2 ``(aoi, time, y, x)``;
    S3 ``(aoi, scene, y, x)`` with the first ``n_next`` main scenes then the
    neighbouring ones; S4 ``(y, x)``; S5 ``(time, point)``; M ``(time, y, x)``;
    Build ``(file, 6)``: width, height and transform ``a, c, e, f``.
    """
    n = m.aoi_size
    main = m.main
    if name == "S1":
        r, c = m.aois[0]
        units = [
            Unit(s.files[b], s, b, "windows", windows=[(r, c, n, n)], slots=[(bi, ti)])
            for bi, b in enumerate(("B04", "B08"))
            for ti, s in enumerate(main)
        ]
        return Scenario(name, units, (2, len(main), n, n))
    if name == "S2":
        units = [
            Unit(
                s.files["B04"],
                s,
                "B04",
                "windows",
                windows=[(r, c, n, n) for r, c in m.aois],
                slots=[(ai, ti) for ai in range(len(m.aois))],
            )
            for ti, s in enumerate(main)
        ]
        return Scenario(name, units, (len(m.aois), len(main), n, n))
    if name == "S3":
        scenes = cross_scenes(m)
        t = _main_transform(m)
        units = []
        for si, s in enumerate(scenes):
            if s.epsg == main[0].epsg:
                units.append(
                    Unit(
                        s.files["B04"],
                        s,
                        "B04",
                        "windows",
                        windows=[(r, c, n, n) for r, c in m.cross_aois],
                        slots=[(ai, si) for ai in range(len(m.cross_aois))],
                    )
                )
            else:
                units.append(
                    Unit(
                        s.files["B04"],
                        s,
                        "B04",
                        "warp",
                        warps=[(t * Affine.translation(c, r), n, n) for r, c in m.cross_aois],
                        slots=[(ai, si) for ai in range(len(m.cross_aois))],
                    )
                )
        return Scenario(name, units, (len(m.cross_aois), len(scenes), n, n))
    if name == "S4":
        s = main[0]
        return Scenario(
            name, [Unit(s.files["B04"], s, "B04", "whole", slots=[()])], (s.height, s.width)
        )
    if name == "S5":
        pts = np.asarray(m.points, float)
        units = [
            Unit(s.files["B04"], s, "B04", "sample", points=(pts[:, 0], pts[:, 1]), slots=[(ti,)])
            for ti, s in enumerate(main)
        ]
        return Scenario(name, units, (len(main), len(pts)))
    if name == "M":
        units = [
            Unit(s.files["B04"], s, "B04", "whole", slots=[(ti,)]) for ti, s in enumerate(main)
        ]
        return Scenario(name, units, (len(main), main[0].height, main[0].width))
    if name == "Build":
        units = [
            Unit(s.files[b], s, b, "profile", slots=[(i,)])
            for i, (s, b) in enumerate((s, b) for s in m.scenes for b in ("B02", "B04", "B08"))
        ]
        return Scenario(name, units, (len(units), 6), np.float64)
    raise KeyError(f"unknown scenario {name!r}; known: {sorted(SCENARIOS)}")


def cross_scenes(m: Manifest) -> list[Scene]:
    """Scenes of S3: as many main-grid scenes as neighbouring ones, then the neighbouring ones."""
    return m.main[: len(m.next)] + m.next


def pixel_indices(
    m: Manifest, points: tuple[np.ndarray, np.ndarray], scene: Scene
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the pixel of ``scene`` containing each EPSG:32633 point."""
    t = Affine(*scene.transform)
    inv = ~t
    cols, rows = inv * (np.asarray(points[0]), np.asarray(points[1]))
    return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
