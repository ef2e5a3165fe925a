"""Warnings about a warp model, on synthetic GCPs with known answers."""

import numpy as np
import pytest
from rasters import epsg_wkt

from promptmid.geometry.gcps import GCPSet
from promptmid.geometry.quality import (convex_hull, coverage, departure_from_affine_px, fallback_transform, inside_hull,
                                        loo_rmse_px, transform_warnings)

WKT = epsg_wkt(32632)


def _affine_gcps(px, ln, noise=0.0, seed=0, bend=0.0):
    """10 m pixels, north-up; ``bend`` adds a smooth second-order term (map units per pixel^2)."""
    rng = np.random.default_rng(seed)
    mx = 400000 + 10 * px + bend * (px - 500) ** 2 + rng.normal(0, noise, len(px))
    my = 5000000 - 10 * ln + rng.normal(0, noise, len(px))
    return GCPSet(px, ln, mx, my, np.ones(len(px)), WKT)


def _uniform(n, seed=0, xmax=1000.0, ymax=1000.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, xmax, n), rng.uniform(0, ymax, n)


OVERLAP = (400000.0, 4990000.0, 410000.0, 5000000.0)  # the full 1000 x 1000 px image


def test_hull_and_inside():
    hull = convex_hull(np.array([0, 1, 1, 0, 0.5]), np.array([0, 0, 1, 1, 0.5]))
    assert len(hull) == 4  # the centre point is not a vertex
    inside = inside_hull(hull, np.array([0.5, 1.5, 1.0]), np.array([0.5, 0.5, 1.0]))
    assert inside.tolist() == [True, False, True]


def test_sound_fits_give_no_warnings():
    g = _affine_gcps(*_uniform(200), noise=5.0)
    assert transform_warnings(g, "affine", OVERLAP) == []
    assert transform_warnings(g, "poly2", OVERLAP) == []  # GCPs cover the image, poly2 is not worse than affine
    assert fallback_transform(g, "poly2") == ("poly2", "")


def test_noisy_tie_points_make_a_spline_worse_than_affine():
    # The case: noisy GCPs on an affine truth; TPS through them errs more than affine at unseen points.
    g = _affine_gcps(*_uniform(78, seed=2), noise=30.0, seed=2)
    tps, affine = loo_rmse_px(g, "tps"), loo_rmse_px(g, "affine")
    assert tps > 1.15 * affine
    warnings = transform_warnings(g, "tps", OVERLAP)
    assert "Thin-plate spline: leave-one-out error" in warnings[0] and "too noisy" in warnings[0]
    chosen, why = fallback_transform(g, "tps")
    assert chosen == "affine" and "replaced by affine" in why


def test_few_tie_points_are_called_few():
    g = _affine_gcps(*_uniform(12, seed=3), noise=30.0, seed=3)
    msg = transform_warnings(g, "tps")
    assert msg and "only 12 tie points: too few" in msg[0]


def test_a_real_bend_keeps_the_spline():
    # A smooth non-affine truth with accurate GCPs: TPS/poly2 beat affine in cross-validation, no fallback.
    g = _affine_gcps(*_uniform(150, seed=4), noise=1.0, seed=4, bend=0.002)
    assert loo_rmse_px(g, "tps") < loo_rmse_px(g, "affine")
    assert fallback_transform(g, "tps") == ("tps", "")
    assert fallback_transform(g, "poly2") == ("poly2", "")


def test_poly2_extrapolation_is_located_and_measured():
    # GCPs only in the south-west half of the image (x < 500 px, y > 500 px); a slight bend in the data
    px, ln = _uniform(80, seed=7, xmax=500.0)
    ln = 500 + ln / 2
    g = _affine_gcps(px, ln, noise=3.0, seed=7, bend=0.0005)
    cov = coverage(g, OVERLAP)
    assert 0.7 < cov.extrapolated < 0.85  # ~3/4 of the image is outside a hull of the south-west quarter
    assert {"north-east", "north", "east"} <= set(cov.zones) and "south-west" not in cov.zones
    warnings = transform_warnings(g, "poly2", OVERLAP)
    assert any("extrapolates over" in w and "north-east" in w and "departs from an affine fit by up to" in w for w in warnings)
    far = departure_from_affine_px(g, "poly2", np.array([410000.0 - 5]), np.array([5000000.0 - 5]))  # north-east corner
    # the bend term 0.0005 * (px - 500)^2 map units at px = 1000: 125 m = 12.5 px; poly2 follows it, affine does not
    assert far[0] > 5
    assert transform_warnings(g, "affine", OVERLAP) == []


def test_everything_outside_reads_all_around():
    px, ln = _uniform(60, seed=9, xmax=400, ymax=400)
    g = _affine_gcps(px + 300, ln + 300, noise=2.0, seed=9)  # a central block of GCPs
    cov = coverage(g, OVERLAP)
    assert cov.where() == "all around the edges"


@pytest.mark.parametrize("transform", ["poly2", "tps"])
def test_too_few_for_the_model_gives_no_crash(transform):
    g = _affine_gcps(*_uniform(4, seed=1), noise=1.0)
    assert isinstance(transform_warnings(g, transform, OVERLAP), list)
