"""How far to trust a warp model fitted to GCPs: its cross-validated error, and where it extrapolates.

A thin-plate spline passes through every GCP, so its fit residuals are zero whatever the tie points are
worth; a second-order polynomial bends freely outside the area its GCPs cover. Both read better than
an affine fit on paper and can be worse on the ground. Leave-one-out (LOO) error compares the models
honestly, and the convex hull of the GCPs shows where a model extrapolates.

Units: errors in SAR source pixels; bounds and hulls in the GCPs' map CRS (the optical raster's), with
north = +y (north-up CRS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .gcps import MIN_GCPS, GCPSet, eval_polynomial, fit_polynomial, fit_tps, loo_residuals, pixel_jacobian_inv

LABELS = {"similarity": "Similarity", "affine": "Affine", "poly2": "Polynomial 2", "tps": "Thin-plate spline"}
RIGID = ("affine", "similarity")  # global models: nothing to fall back to, nowhere they bend between tie points
WORSE_RATIO = 1.15  # a model is "clearly worse" than affine when its LOO RMSE exceeds affine's by 15 % ...
WORSE_MARGIN_PX = 0.3  # ... and by at least this much (sub-pixel differences are noise)
FEW_GCPS = 30  # below this a flexible model's trouble is more likely "too few" than "too noisy"
EXTRAPOLATED_WARN = 0.10  # warn when at least this share of the overlap lies outside the GCPs' hull
ZONES = (("north-west", "north", "north-east"), ("west", "centre", "east"), ("south-west", "south", "south-east"))


def loo_rmse_px(gcps: GCPSet, transform: str) -> float:
    """Root-mean-square leave-one-out error of ``transform`` on ``gcps``, in source pixels (inf when
    there are too few GCPs for it)."""
    if len(gcps) < MIN_GCPS[transform] + 1:
        return float("inf")
    dx, dy, _ = loo_residuals(gcps, transform)
    return float(np.sqrt(np.mean(dx ** 2 + dy ** 2)))


def clearly_worse(model_px: float, affine_px: float) -> bool:
    return model_px > affine_px * WORSE_RATIO and model_px - affine_px > WORSE_MARGIN_PX


def fallback_transform(gcps: GCPSet, transform: str) -> tuple[str, str]:
    """(transform to use, message). poly2/tps fall back to affine when their LOO error is clearly worse
    than affine's (the tie points are too few or too noisy for the flexible model); the message says
    so in one line. Otherwise (``transform``, "")."""
    if transform in RIGID:
        return transform, ""
    model, affine = loo_rmse_px(gcps, transform), loo_rmse_px(gcps, "affine")
    if not clearly_worse(model, affine):
        return transform, ""
    return "affine", (f"{LABELS[transform]} replaced by affine: its leave-one-out error is {_px(model)} against "
                      f"{_px(affine)} for affine ({_why(len(gcps))}).")


def _px(v: float) -> str:
    return "unbounded" if not np.isfinite(v) else f"{v:.1f} px"


def _why(n: int) -> str:
    return (f"only {n} tie points: too few" if n < FEW_GCPS else f"the {n} tie points are too noisy") + \
        " for it, so it bends to fit their errors"


@dataclass
class Coverage:
    """Where the overlap lies outside the convex hull of the GCPs (map positions)."""

    extrapolated: float  # share of the overlap outside the hull, 0..1
    zones: list[str] = field(default_factory=list)  # compass zones of the overlap mostly outside the hull
    outside_x: np.ndarray = field(default_factory=lambda: np.zeros(0))  # sample points outside the hull (map)
    outside_y: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def where(self) -> str:
        edges = [z for row in ZONES for z in row if z != "centre"]
        if set(edges) <= set(self.zones):
            return "all around the edges"
        return ", ".join(self.zones) if self.zones else "scattered"


def convex_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(K, 2) vertices of the convex hull, counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(set(zip(np.asarray(x, float).tolist(), np.asarray(y, float).tolist())))
    if len(pts) < 3:
        return np.array(pts, float).reshape(-1, 2)

    def half(points):
        chain: list = []
        for p in points:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(pts), half(reversed(pts))
    return np.array(lower[:-1] + upper[:-1], float)


def _cross(o, a, b) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def inside_hull(hull: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask: points inside (or on) a counter-clockwise convex hull."""
    if len(hull) < 3:
        return np.zeros(np.shape(x), bool)
    inside = np.ones(np.shape(x), bool)
    for (x0, y0), (x1, y1) in zip(hull, np.roll(hull, -1, axis=0)):
        inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= -1e-9 * max(abs(x1 - x0), abs(y1 - y0), 1.0)
    return inside


def coverage(gcps: GCPSet, overlap_bounds: tuple[float, float, float, float], samples: int = 60) -> Coverage:
    """Share and compass zones of the overlap (xmin, ymin, xmax, ymax in map units) outside the GCPs' hull,
    on a ``samples`` x ``samples`` grid of cell centres."""
    xmin, ymin, xmax, ymax = overlap_bounds
    t = (np.arange(samples) + 0.5) / samples
    gx, gy = np.meshgrid(xmin + t * (xmax - xmin), ymax - t * (ymax - ymin))  # row 0 = north
    out = ~inside_hull(convex_hull(gcps.map_x, gcps.map_y), gx, gy)
    zones = []
    thirds = np.array_split(np.arange(samples), 3)
    for r, rows in enumerate(thirds):
        for c, cols in enumerate(thirds):
            if out[np.ix_(rows, cols)].mean() >= 0.5:
                zones.append(ZONES[r][c])
    return Coverage(float(out.mean()), zones, gx[out], gy[out])


def departure_from_affine_px(gcps: GCPSet, transform: str, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """How far ``transform`` (fitted to all GCPs) puts the points that the affine fit puts at (map_x,
    map_y), in source pixels: the disagreement of the two models where no GCP constrains them."""
    coef1 = fit_polynomial(gcps, 1)
    lin, off = coef1[1:3].T, coef1[0]
    pl = np.linalg.solve(lin, np.column_stack([map_x, map_y]).T - off[:, None]).T  # affine inverse: map -> pixel/line
    if transform == "poly2":
        model = eval_polynomial(fit_polynomial(gcps, 2), pl[:, 0], pl[:, 1])
    elif transform == "tps":
        model = fit_tps(gcps)(pl[:, 0], pl[:, 1])
    else:
        return np.zeros(len(pl))
    diff = (model - np.column_stack([map_x, map_y])) @ pixel_jacobian_inv(gcps).T
    return np.hypot(diff[:, 0], diff[:, 1])


def transform_warnings(gcps: GCPSet, transform: str, overlap_bounds: tuple[float, float, float, float] | None = None) -> list[str]:
    """One-line warnings for a GIS analyst about fitting ``transform`` to ``gcps`` (empty for a sound fit).

    - poly2 / tps whose leave-one-out error is clearly worse than affine's: too few or too noisy GCPs;
    - poly2 / tps when at least 10 % of the overlap (``overlap_bounds``, map units of the GCPs' CRS) lies
      outside the GCPs' convex hull: the share, the compass zones, and how far the model departs from
      an affine fit there.
    """
    if transform in RIGID or len(gcps) < MIN_GCPS[transform]:
        return []
    out = []
    label = LABELS[transform]
    model, affine = loo_rmse_px(gcps, transform), loo_rmse_px(gcps, "affine")
    if clearly_worse(model, affine):
        out.append(f"{label}: leave-one-out error {_px(model)} against {_px(affine)} for affine; {_why(len(gcps))}. "
                   "Affine is likely more accurate.")
    if overlap_bounds is not None:
        cov = coverage(gcps, overlap_bounds)
        if cov.extrapolated >= EXTRAPOLATED_WARN:
            dep = departure_from_affine_px(gcps, transform, cov.outside_x, cov.outside_y)
            far = f"; there it departs from an affine fit by up to {dep.max():.1f} px (median {np.median(dep):.1f} px)" if dep.size else ""
            out.append(f"{label} extrapolates over {100 * cov.extrapolated:.0f} % of the overlap ({cov.where()}), outside "
                       f"the tie points' area{far}. Use affine there, or add tie points.")
    return out
