"""Descriptor matching: mutual nearest neighbours on cosine similarity, optional Lowe ratio test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class MatchConfig:
    mutual: bool = True
    ratio: Optional[float] = None  # e.g. 0.95: best / second-best *distance* ratio; None = off
    chunk: int = 4096  # rows of the similarity matrix computed at once (bounds memory)


def mutual_nearest_neighbours(desc0: np.ndarray, desc1: np.ndarray, cfg: MatchConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Match L2-normalised descriptors. Returns (K, 2) index pairs (i into desc0, j into desc1) and the
    cosine similarity of each pair. Empty inputs give empty outputs."""
    cfg = cfg or MatchConfig()
    n0, n1 = len(desc0), len(desc1)
    if n0 == 0 or n1 == 0:
        return np.zeros((0, 2), np.int64), np.zeros((0,), np.float32)
    d0 = desc0.astype(np.float32, copy=False)
    d1 = desc1.astype(np.float32, copy=False)
    best01 = np.empty(n0, np.int64)
    sim01 = np.empty(n0, np.float32)
    second01 = np.full(n0, -np.inf, np.float32)
    best10 = np.empty(n1, np.int64)
    sim10 = np.full(n1, -np.inf, np.float32)
    for s in range(0, n0, cfg.chunk):
        sim = d0[s : s + cfg.chunk] @ d1.T
        if n1 > 1:
            top2 = np.argpartition(-sim, 1, axis=1)[:, :2]
            v = np.take_along_axis(sim, top2, axis=1)
            first = np.argmax(v, axis=1)
            best01[s : s + len(sim)] = top2[np.arange(len(sim)), first]
            sim01[s : s + len(sim)] = v[np.arange(len(sim)), first]
            second01[s : s + len(sim)] = v[np.arange(len(sim)), 1 - first]
        else:
            best01[s : s + len(sim)] = 0
            sim01[s : s + len(sim)] = sim[:, 0]
        col_best = np.argmax(sim, axis=0)
        col_val = sim[col_best, np.arange(n1)]
        better = col_val > sim10
        sim10[better] = col_val[better]
        best10[better] = col_best[better] + s
    idx0 = np.arange(n0)
    keep = np.ones(n0, bool)
    if cfg.mutual:
        keep &= best10[best01] == idx0
    if cfg.ratio is not None:
        # distances of unit vectors: d = sqrt(2 - 2 cos)
        d_best = np.sqrt(np.maximum(2 - 2 * sim01, 0))
        d_second = np.sqrt(np.maximum(2 - 2 * second01, 0))
        keep &= d_best < cfg.ratio * d_second
    pairs = np.column_stack([idx0[keep], best01[keep]])
    return pairs, sim01[keep]
