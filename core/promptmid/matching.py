"""Descriptor matching: mutual nearest neighbours on cosine similarity, optional Lowe ratio test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch


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
    # torch for the similarity products and top-2 search: multithreaded, ~6x faster than numpy's
    # argpartition on 4000 x 4000 (same numbers, float32 either way).
    d0 = torch.from_numpy(np.ascontiguousarray(desc0, np.float32))
    d1 = torch.from_numpy(np.ascontiguousarray(desc1, np.float32))
    best01 = torch.empty(n0, dtype=torch.int64)
    sim01 = torch.empty(n0)
    second01 = torch.full((n0,), -float("inf"))
    best10 = torch.zeros(n1, dtype=torch.int64)
    sim10 = torch.full((n1,), -float("inf"))
    with torch.no_grad():
        for s in range(0, n0, cfg.chunk):
            sim = d0[s : s + cfg.chunk] @ d1.T
            v, i = torch.topk(sim, min(2, n1), dim=1)
            best01[s : s + len(sim)], sim01[s : s + len(sim)] = i[:, 0], v[:, 0]
            if n1 > 1:
                second01[s : s + len(sim)] = v[:, 1]
            col_val, col_best = sim.max(dim=0)
            better = col_val > sim10
            sim10[better] = col_val[better]
            best10[better] = col_best[better] + s
    best01, sim01, second01, best10 = best01.numpy(), sim01.numpy(), second01.numpy(), best10.numpy()
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
