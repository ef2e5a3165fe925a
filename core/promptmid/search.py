"""Stage 1, global search: rotation / scale / translation hypotheses from dense feature maps.

For each (rotation, scale) on a grid, the SAR map is rotated and scaled about its centre and correlated
with the optical map over *all* translations at once (FFT), normalised by the feature energy inside the
overlap of the two valid masks (so partial overlaps and nodata do not bias the peak). This runs on a
coarse pyramid level first; the best distinct hypotheses are then refined on a finer level with a finer
rotation / scale grid and a sub-cell (quadratic) peak. Hypotheses are ranked by their normalised
correlation; the best distinct runner-up is kept as evidence for the verdict.

Coordinates: array-index pixels of the work grid (x = col, y = row, pixel centres on integers).
A hypothesis maps SAR pixels to optical pixels: p_o = s R(theta) (p_s - c_s) + c_s + t, with c_s the
SAR image centre, so (theta, s, t) = (0, 1, 0) is the identity of two same-size grids.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .dense.base import DenseMap, rotate_channels
from .dense.correlation import centred, fft_len, peak_offset
from .progress import Progress


@dataclass
class SearchConfig:
    max_rotation_deg: float = 12.0  # searched: [-max, +max] (the paper's protocol draws +-10)
    scale_range: tuple[float, float] = (0.75, 1.05)  # searched SAR -> optical scales (protocol: 0.8-1)
    max_shift_px: Optional[float] = None  # work-grid px around the identity; None = any shift with enough overlap
    coarse_side: int = 64  # coarse pyramid level: longer side of the pooled maps, cells
    fine_side: int = 128  # refinement level
    rotation_step_deg: float = 3.0  # coarse grid steps
    scale_step: float = 0.06
    refine_rounds: int = 2  # each halves the steps around the best hypotheses
    top_k: int = 2  # distinct coarse hypotheses refined (the best and its runner-up)
    min_overlap: float = 0.4  # overlap / smaller valid area below which a shift is not scored
    distinct_px: float = 6.0  # work px (at least 3 coarse cells): poses whose corners differ more are distinct
    batch: int = 32  # hypotheses correlated at once (bounds memory)
    near_georef: bool = False  # set by georef_search: the verdict then uses its own thresholds
    # A georeferenced SAR is placed by its georeference first, so only a small residual is searched:
    georef_max_rotation_deg: float = 3.0
    georef_scale_range: tuple[float, float] = (0.95, 1.05)
    georef_max_shift_px: float = 48.0  # work px (the georef protocol's 30 native px, with a margin)


def georef_search(cfg: SearchConfig) -> SearchConfig:
    """The search for a pair already placed by georeference: small rotation / scale / shift ranges."""
    return replace(cfg, near_georef=True, max_rotation_deg=cfg.georef_max_rotation_deg, scale_range=cfg.georef_scale_range,
                   max_shift_px=cfg.georef_max_shift_px, rotation_step_deg=min(cfg.rotation_step_deg, 1.0),
                   scale_step=min(cfg.scale_step, 0.02))


@dataclass
class Hypothesis:
    rotation_deg: float
    scale: float
    tx: float  # work px
    ty: float
    score: float  # normalised correlation of the dense maps at this pose, in [-1, 1]
    level_stride: int = 1

    def matrix(self, sar_shape: tuple[int, int]) -> np.ndarray:
        """3x3 SAR work px -> optical work px."""
        h, w = sar_shape
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        a = math.radians(self.rotation_deg)
        c, s = self.scale * math.cos(a), self.scale * math.sin(a)
        return np.array([[c, -s, cx - c * cx + s * cy + self.tx],
                         [s, c, cy - s * cx - c * cy + self.ty],
                         [0.0, 0.0, 1.0]])


@dataclass
class SearchResult:
    best: Optional[Hypothesis]  # refined
    runner_up: Optional[Hypothesis]  # the best coarse pose that puts the image elsewhere (None if none)
    hypotheses: list[Hypothesis] = field(default_factory=list)  # refined, best first
    seconds: float = 0.0
    peak_ratio: float = 0.0  # best / runner-up coarse score (>1; larger = less ambiguous; inf: no runner-up)


def global_search(optical: DenseMap, sar: DenseMap, sar_shape: tuple[int, int], cfg: SearchConfig,
                  progress: Optional[Progress] = None) -> SearchResult:
    """Search rotation, scale and translation mapping the SAR image onto the optical image.

    ``sar_shape`` is the SAR image's (rows, cols) in work pixels (the maps may be strided)."""
    progress = progress or Progress()
    t0 = time.perf_counter()
    k_coarse = _level_stride(optical, sar, cfg.coarse_side)
    k_fine = _level_stride(optical, sar, cfg.fine_side)
    coarse = _Level(optical, sar, k_coarse, sar_shape, cfg)
    rots = _symmetric_grid(cfg.max_rotation_deg, cfg.rotation_step_deg)
    lo, hi = cfg.scale_range
    n_s = max(1, int(round(math.log(hi / lo) / math.log1p(cfg.scale_step)))) + 1
    scales = np.exp(np.linspace(math.log(lo), math.log(hi), n_s)) if n_s > 1 else np.array([math.sqrt(lo * hi)])
    poses = [(float(r), float(s)) for r in rots for s in scales]
    scored = coarse.best_per_pose(poses, progress.sub(0.0, 0.6))
    scored.sort(key=lambda h: -h.score)
    # Poses closer than a few coarse cells share one correlation peak: "distinct" must be beyond it.
    distinct = max(cfg.distinct_px, 3.0 * coarse.stride)
    seeds = _distinct(scored, sar_shape, distinct, cfg.top_k)
    progress.report(0.6, f"{len(poses)} poses searched")
    fine = _FineLevel(optical, sar, k_fine, sar_shape, cfg)
    refined: list[Hypothesis] = []
    for i, h in enumerate(seeds):
        refined.append(fine.refine(h))
        progress.report(0.6 + 0.4 * (i + 1) / max(len(seeds), 1), "refining hypotheses")
    refined.sort(key=lambda h: -h.score)
    best = refined[0] if refined else None
    # Ambiguity is judged on the coarse level, where every pose was scored the same way: the best pose
    # against the best one that puts the image somewhere else.
    runner = None
    if scored:
        top = scored[0]
        runner = next((h for h in scored[1:] if not _same(h, top, sar_shape, distinct)), None)
    ratio = 0.0 if best is None else math.inf
    if runner is not None and runner.score > 1e-6:
        ratio = scored[0].score / runner.score
    return SearchResult(best, runner, refined, time.perf_counter() - t0, ratio)


# --- internals ---------------------------------------------------------------------------------------

def _symmetric_grid(half: float, step: float) -> np.ndarray:
    n = int(math.ceil(half / step - 1e-9)) if step > 0 else 0
    return np.linspace(-half, half, 2 * n + 1) if n > 0 else np.array([0.0])


def _level_stride(optical: DenseMap, sar: DenseMap, side: int) -> int:
    """Pooling factor (relative to the maps' own stride) so the longer map side is about ``side``."""
    longest = max(*optical.shape, *sar.shape)
    return max(1, int(round(longest / float(side))))


def _pool(m: DenseMap, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    f, v = m.features.float(), m.valid.float()
    if k > 1:
        h, w = (f.shape[1] // k) * k, (f.shape[2] // k) * k
        f = F.avg_pool2d(f[None, :, :h, :w], k)[0]
        v = (F.avg_pool2d(v[None, None, :h, :w], k)[0, 0] > 0.999).float()
    return f, v


def _same(a: Hypothesis, b: Hypothesis, sar_shape: tuple[int, int], tol: float) -> bool:
    h, w = sar_shape
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1], [(w - 1) / 2, (h - 1) / 2, 1]], float)
    d = (corners @ a.matrix(sar_shape).T)[:, :2] - (corners @ b.matrix(sar_shape).T)[:, :2]
    return float(np.max(np.hypot(d[:, 0], d[:, 1]))) <= tol


def _distinct(hyps: list[Hypothesis], sar_shape: tuple[int, int], tol: float, k: int) -> list[Hypothesis]:
    out: list[Hypothesis] = []
    for h in hyps:
        if all(not _same(h, o, sar_shape, tol) for o in out):
            out.append(h)
            if len(out) == k:
                break
    return out


class _Level:
    """One pyramid level: pooled maps and the optical spectra, reused by every pose."""

    def __init__(self, optical: DenseMap, sar: DenseMap, k: int, sar_shape: tuple[int, int], cfg: SearchConfig) -> None:
        self.cfg, self.sar_shape = cfg, sar_shape
        self.stride = optical.stride * k  # work px per cell (both maps share the stride)
        fo, vo = _pool(optical, k)
        fs, vs = _pool(sar, k)
        # Centre each channel over its valid cells: correlation then measures co-variation of structure,
        # not the shared positive offset of magnitude-like channels.
        self.fo = centred(fo, vo)
        self.fs = centred(fs, vs)
        self.vo, self.vs = vo, vs
        self.n_orient, self.period = sar.n_orientations, sar.orientation_period
        ho, wo = vo.shape
        hs, ws = vs.shape
        # canvas: the SAR map's bounding box at the largest rotation and scale searched
        a = math.radians(min(abs(cfg.max_rotation_deg), 45.0))
        smax = cfg.scale_range[1] * 1.02
        hc = int(math.ceil(smax * (hs * math.cos(a) + ws * math.sin(a)))) + 2
        wc = int(math.ceil(smax * (ws * math.cos(a) + hs * math.sin(a)))) + 2
        self.canvas = (hc, wc)
        self.fft = (fft_len(ho + hc), fft_len(wo + wc))
        P = self.fft
        self.Fo = torch.fft.rfft2(self.fo * vo, s=P)
        self.Fo2 = torch.fft.rfft2((self.fo ** 2).sum(0) * vo, s=P)
        self.Fvo = torch.fft.rfft2(vo, s=P)
        self.area = float(min(vo.sum(), vs.sum()))

    def _warp(self, poses: list[tuple[float, float]]) -> tuple[torch.Tensor, torch.Tensor]:
        """SAR maps rotated/scaled onto the canvas, (B, C, Hc, Wc) and masks (B, Hc, Wc)."""
        hs, ws = self.vs.shape
        hc, wc = self.canvas
        ys, xs = torch.meshgrid(torch.arange(hc, dtype=torch.float32), torch.arange(wc, dtype=torch.float32), indexing="ij")
        qx, qy = xs - (wc - 1) / 2.0, ys - (hc - 1) / 2.0
        grids = []
        for rot, s in poses:
            a = math.radians(rot)
            c, sn = math.cos(a) / s, math.sin(a) / s
            px = c * qx + sn * qy + (ws - 1) / 2.0  # inverse rotation: canvas -> SAR cells
            py = -sn * qx + c * qy + (hs - 1) / 2.0
            grids.append(torch.stack([(px + 0.5) / ws * 2 - 1, (py + 0.5) / hs * 2 - 1], -1))
        g = torch.stack(grids)
        B = len(poses)
        f = F.grid_sample(self.fs[None].expand(B, -1, -1, -1), g, mode="bilinear", padding_mode="zeros", align_corners=False)
        v = F.grid_sample(self.vs[None, None].expand(B, -1, -1, -1), g, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
        v = (v > 0.999).float()
        if self.n_orient:
            f = rotate_channels(f, [p[0] for p in poses], self.n_orient, self.period)
        return f * v[:, None], v

    def correlate(self, poses: list[tuple[float, float]]) -> torch.Tensor:
        """(B, P0, P1) normalised correlation over circular shifts; -inf where the overlap is too small."""
        f, v = self._warp(poses)
        P = self.fft
        Fg = torch.fft.rfft2(f, s=P)
        num = torch.fft.irfft2((self.Fo[None] * Fg.conj()).sum(1), s=P)
        Fv = torch.fft.rfft2(v, s=P)
        e_o = torch.fft.irfft2(self.Fo2[None] * Fv.conj(), s=P)
        e_g = torch.fft.irfft2(self.Fvo[None] * torch.fft.rfft2((f ** 2).sum(1), s=P).conj(), s=P)
        n = torch.fft.irfft2(self.Fvo[None] * Fv.conj(), s=P)
        score = num / torch.sqrt(torch.clamp(e_o, min=1e-9) * torch.clamp(e_g, min=1e-9))
        ok = n >= self.cfg.min_overlap * self.area
        if self.cfg.max_shift_px is not None:
            ok &= self._shift_window(len(poses))
        return torch.where(ok, score, torch.full_like(score, -math.inf))

    def _shift_window(self, b: int) -> torch.Tensor:
        """Shifts within max_shift_px of the identity (the SAR pivot onto the same work-grid position)."""
        ident = Hypothesis(0.0, 1.0, 0.0, 0.0, 0.0)
        return self._window(self._shift_of(ident), self.cfg.max_shift_px / self.stride)[None].expand(b, -1, -1)

    def _window(self, centre: tuple[float, float], r: float) -> torch.Tensor:
        P0, P1 = self.fft
        ey, ex = centre
        dy = (torch.arange(P0, dtype=torch.float32) - ey + P0 / 2) % P0 - P0 / 2
        dx = (torch.arange(P1, dtype=torch.float32) - ex + P1 / 2) % P1 - P1 / 2
        return (dy[:, None] ** 2 + dx[None, :] ** 2) <= r * r

    def _pivot(self) -> tuple[float, float]:
        """Work px of the SAR map's centre cell, about which the canvas rotates (pooling may crop)."""
        hs, ws = self.vs.shape
        return ws * self.stride / 2.0 - 0.5, hs * self.stride / 2.0 - 0.5

    def _shift_of(self, h: Hypothesis) -> tuple[float, float]:
        """Canvas shift (rows, cols; cells) that ``h`` implies: where it puts the pivot, in cells, minus
        the canvas centre."""
        px, py = self._pivot()
        ox, oy, _ = h.matrix(self.sar_shape) @ np.array([px, py, 1.0])
        hc, wc = self.canvas
        return (oy + 0.5) / self.stride - 0.5 - (hc - 1) / 2.0, (ox + 0.5) / self.stride - 0.5 - (wc - 1) / 2.0

    def hypothesis(self, rot: float, s: float, shift_y: float, shift_x: float, score: float) -> Hypothesis:
        """Convert a canvas shift (cells, possibly fractional) into a work-grid hypothesis."""
        hc, wc = self.canvas
        # the pivot lands on optical cell (canvas centre + shift); p_o = sR(p_s - pivot) + o
        ox = ((wc - 1) / 2.0 + shift_x + 0.5) * self.stride - 0.5
        oy = ((hc - 1) / 2.0 + shift_y + 0.5) * self.stride - 0.5
        px, py = self._pivot()
        hs, ws = self.sar_shape
        cx, cy = (ws - 1) / 2.0, (hs - 1) / 2.0
        a = math.radians(rot)
        c, sn = s * math.cos(a), s * math.sin(a)
        # p_o = sR(p_s - c) + c + t  with  t = o + sR(c - pivot) - c
        tx = ox + c * (cx - px) - sn * (cy - py) - cx
        ty = oy + sn * (cx - px) + c * (cy - py) - cy
        return Hypothesis(rot, s, tx, ty, score, self.stride)

    def best_per_pose(self, poses: list[tuple[float, float]], progress: Progress) -> list[Hypothesis]:
        out: list[Hypothesis] = []
        P0, P1 = self.fft
        for i in range(0, len(poses), self.cfg.batch):
            chunk = poses[i : i + self.cfg.batch]
            sc = self.correlate(chunk).reshape(len(chunk), -1)
            val, idx = sc.max(dim=1)
            for (rot, s), v, j in zip(chunk, val.tolist(), idx.tolist()):
                if math.isfinite(v):
                    out.append(self.hypothesis(rot, s, _signed(j // P1, P0), _signed(j % P1, P1), v))
            progress.report((i + len(chunk)) / len(poses), "global search")
        return out



class _FineLevel:
    """Local refinement: SAR maps warped straight into the optical frame by each candidate pose, then the
    normalised correlation over small residual shifts (a direct correlation, no FFT: the window is small)."""

    def __init__(self, optical: DenseMap, sar: DenseMap, k: int, sar_shape: tuple[int, int], cfg: SearchConfig) -> None:
        self.cfg, self.sar_shape = cfg, sar_shape
        self.stride = optical.stride * k
        fo, vo = _pool(optical, k)
        fs, vs = _pool(sar, k)
        self.fo, self.vo = centred(fo, vo), vo
        self.fs, self.vs = centred(fs, vs), vs
        self.n_orient, self.period = sar.n_orientations, sar.orientation_period

    def _warp(self, hyps: list[Hypothesis]) -> tuple[torch.Tensor, torch.Tensor]:
        ho, wo = self.vo.shape
        hs, ws = self.vs.shape
        k = self.stride
        ys, xs = torch.meshgrid(torch.arange(ho, dtype=torch.float64), torch.arange(wo, dtype=torch.float64), indexing="ij")
        # optical cell -> optical work px -> SAR work px (inverse hypothesis) -> SAR cell -> normalised
        opx = torch.stack([(xs + 0.5) * k - 0.5, (ys + 0.5) * k - 0.5, torch.ones_like(xs)], -1)
        grids = []
        for h in hyps:
            inv = torch.from_numpy(np.linalg.inv(h.matrix(self.sar_shape)))
            sp = opx @ inv.T
            grids.append(torch.stack([(sp[..., 0] + 0.5) / k / ws * 2 - 1, (sp[..., 1] + 0.5) / k / hs * 2 - 1], -1))
        g = torch.stack(grids).float()
        b = len(hyps)
        f = F.grid_sample(self.fs[None].expand(b, -1, -1, -1), g, mode="bilinear", padding_mode="zeros", align_corners=False)
        v = F.grid_sample(self.vs[None, None].expand(b, -1, -1, -1), g, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
        v = (v > 0.999).float()
        if self.n_orient:
            f = rotate_channels(f, [h.rotation_deg for h in hyps], self.n_orient, self.period)
        return f * v[:, None], v

    def scores(self, hyps: list[Hypothesis], r: int) -> torch.Tensor:
        """(B, 2r+1, 2r+1) normalised correlation of each warped SAR map with the optical map shifted by
        (dy, dx) cells in [-r, r]; entry [r + dy, r + dx] scores moving the SAR by (+dx, +dy)."""
        f, v = self._warp(hyps)
        fo = F.pad(self.fo, (r, r, r, r))
        fo2 = F.pad((self.fo ** 2).sum(0), (r, r, r, r))
        vo = F.pad(self.vo, (r, r, r, r))
        g2 = (f ** 2).sum(1)
        h, w = self.vo.shape
        size = 2 * r + 1
        num, e_o, e_g, n = (torch.empty(len(hyps), size, size) for _ in range(4))
        # A direct sum per shift: far cheaper than conv2d with an image-sized kernel, or an FFT, for a
        # handful of shifts. Shifting the optical window by (dy, dx) = moving the SAR by (+dx, +dy).
        for iy in range(size):
            for ix in range(size):
                o, o2, ov = fo[:, iy : iy + h, ix : ix + w], fo2[iy : iy + h, ix : ix + w], vo[iy : iy + h, ix : ix + w]
                num[:, iy, ix] = torch.einsum("bchw,chw->b", f, o)
                e_o[:, iy, ix] = torch.einsum("bhw,hw->b", v, o2)
                e_g[:, iy, ix] = torch.einsum("bhw,hw->b", g2, ov)
                n[:, iy, ix] = torch.einsum("bhw,hw->b", v, ov)
        area = float(min(self.vo.sum(), self.vs.sum()))
        sc = num / torch.sqrt(torch.clamp(e_o, min=1e-9) * torch.clamp(e_g, min=1e-9))
        return torch.where(n >= self.cfg.min_overlap * area, sc, torch.full_like(sc, -math.inf))

    def refine(self, seed: Hypothesis) -> Hypothesis:
        cfg = self.cfg
        best = seed
        d_rot, d_log_s = cfg.rotation_step_deg / 2.0, math.log1p(cfg.scale_step) / 2.0
        r = max(1, int(math.ceil(1.5 * seed.level_stride / self.stride)))
        first = True
        for _ in range(max(1, cfg.refine_rounds)):
            cands = [Hypothesis(best.rotation_deg + dr, best.scale * math.exp(ds), best.tx, best.ty, 0.0, self.stride)
                     for dr in (-d_rot, 0.0, d_rot) for ds in (-d_log_s, 0.0, d_log_s)]
            sc = self.scores(cands, r)
            if cfg.max_shift_px is not None:  # the refinement must respect the search window too
                off = (torch.arange(2 * r + 1, dtype=torch.float32) - r) * self.stride
                for b, h in enumerate(cands):
                    out = torch.hypot(h.tx + off[None, :], h.ty + off[:, None]) > cfg.max_shift_px
                    sc[b][out] = -math.inf
            flat = sc.reshape(len(cands), -1)
            v, j = flat.max(dim=1)
            b = int(torch.argmax(v))
            if math.isfinite(float(v[b])) and (first or float(v[b]) > best.score):
                iy, ix = divmod(int(j[b]), 2 * r + 1)
                sy, sx = peak_offset(sc[b].numpy(), iy, ix)
                h = cands[b]
                # the SAR map moved by (dx, dy) cells in the optical frame = a translation of the hypothesis
                best = Hypothesis(h.rotation_deg, h.scale, h.tx + (ix - r + sx) * self.stride,
                                  h.ty + (iy - r + sy) * self.stride, float(v[b]), self.stride)
            first = False
            d_rot, d_log_s, r = d_rot / 2.0, d_log_s / 2.0, 1
        return best


def _signed(i: int, n: int) -> float:
    return float(i - n) if i > n // 2 else float(i)

