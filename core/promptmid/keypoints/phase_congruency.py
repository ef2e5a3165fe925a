"""Kovesi phase congruency (phasecong3: log-Gabor bank, moments of PC covariance), RIFT parameters.

Phase congruency measures feature significance from local phase agreement across scales, so it is
largely invariant to the contrast and intensity mapping that differ between SAR and optical images.

Our own torch implementation of Kovesi's phasecong3, as the ``phasecongruency`` package computes it (its
frequency grids are reused), but in float32 with the filter bank built once per image size and all scales
of an orientation filtered in one batched FFT: the package's float64 path, one FFT at a time, was the
largest single cost of a registration (0.17 s of about 1.3 s per 256 px pair). The maps agree with the
package's to float32 precision (a test compares them); ``backend="package"`` keeps the reference path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from phasecongruency.frequencyfilt import filtergrids, gridangles

_EPS = 1e-5  # Kovesi's epsilon: keeps the divisions finite where there is no energy


@dataclass(frozen=True)
class PhaseCongruencyConfig:
    # RIFT's settings (Li et al. 2019), as the PromptMID paper uses for PC-FAST.
    nscale: int = 4
    norient: int = 6
    min_wavelength: float = 3.0
    mult: float = 1.6
    sigma_onf: float = 0.75
    k: float = 1.0
    cutoff: float = 0.5
    g: float = 3.0
    backend: str = "torch"  # "torch" (ours, float32) or "package" (the phasecongruency package, float64 reference)


@dataclass
class PCMaps:
    """Per-image phase-congruency products, all (H, W) float32 except ``orient_amplitude`` (O, H, W)."""

    max_moment: np.ndarray  # M in [0, 1]: edge + corner strength
    min_moment: np.ndarray  # m: corner strength
    orient_amplitude: np.ndarray  # sum over scales of |log-Gabor response| per orientation (for MIM)


def phase_congruency(image: np.ndarray, cfg: PhaseCongruencyConfig) -> PCMaps:
    """Phase congruency of a [0, 1] gray image (H, W)."""
    if cfg.backend == "package":
        M, m, amp = _package(image, cfg)
    else:
        M, m, amp = _phasecong3(image, cfg)
    M = np.nan_to_num(M.astype(np.float32, copy=False))
    m = np.nan_to_num(m.astype(np.float32, copy=False))
    top = float(M.max())
    return PCMaps(M / top if top > 0 else M, m, amp.astype(np.float32, copy=False))


def orientation_shares(pc: PCMaps) -> np.ndarray:
    """(O, H, W) float32: each orientation's share of the log-Gabor amplitude at every pixel.

    Contrast-free (a ratio), so SAR and optical agree wherever they show the same structure: the input
    of the lite descriptor and of sub-pixel refinement.
    """
    amp = pc.orient_amplitude
    return (amp / (amp.sum(axis=0, keepdims=True) + 1e-6)).astype(np.float32)


# --- internals ---------------------------------------------------------------------------------------

@lru_cache(maxsize=4)  # one per image size in use (a 1024 px bank is 100 MB)
def _filter_bank(rows: int, cols: int, nscale: int, norient: int, min_wavelength: float, mult: float,
                 sigma_onf: float) -> torch.Tensor:
    """(norient, nscale, rows, cols) float32 log-Gabor x angular filters in the frequency domain, built in
    float64 exactly as phasecong3 builds them (Butterworth low-pass at 0.45, cosine angular spread)."""
    freq, fx, fy = filtergrids(rows, cols)
    sintheta, costheta = gridangles(freq, fx, fy)
    lowpass = 1.0 / (1.0 + (freq / 0.45) ** 30)
    radial = []
    with np.errstate(divide="ignore"):
        log_f = np.log(freq)
    for s in range(nscale):
        fo = 1.0 / (min_wavelength * mult ** s)
        lg = np.exp(-((log_f - math.log(fo)) ** 2) / (2 * math.log(sigma_onf) ** 2))
        lg[freq < np.finfo(np.float64).eps] = 0.0  # no DC response
        radial.append(lg * lowpass)
    bank = np.empty((norient, nscale, rows, cols), np.float32)
    for o in range(norient):
        angl = o * math.pi / norient
        ds = sintheta * math.cos(angl) - costheta * math.sin(angl)
        dc = costheta * math.cos(angl) + sintheta * math.sin(angl)
        dtheta = np.minimum(np.abs(np.arctan2(ds, dc)) * (norient / 2.0), math.pi)  # wavelength 4 pi / norient
        spread = (np.cos(dtheta) + 1) / 2
        for s in range(nscale):
            bank[o, s] = radial[s] * spread
    return torch.from_numpy(bank)


@torch.no_grad()
def _phasecong3(image: np.ndarray, cfg: PhaseCongruencyConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = image.shape
    bank = _filter_bank(rows, cols, cfg.nscale, cfg.norient, cfg.min_wavelength, cfg.mult, cfg.sigma_onf)
    nscale, norient = cfg.nscale, cfg.norient
    IMG = torch.fft.fft2(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)))
    covx2 = torch.zeros(rows, cols)
    covy2 = torch.zeros(rows, cols)
    covxy = torch.zeros(rows, cols)
    amplitude = torch.empty(norient, rows, cols)
    # Noise threshold of the energy summed over scales (Kovesi, noisemethod -1: from the median response
    # of the smallest scale, assumed Rayleigh-distributed noise).
    total_tau = (1 - (1 / cfg.mult) ** nscale) / (1 - (1 / cfg.mult))
    for o in range(norient):
        angl = o * math.pi / norient
        eo = torch.fft.ifft2(IMG[None] * bank[o])  # (nscale, rows, cols) complex64, one batched FFT
        even, odd, an = eo.real, eo.imag, eo.abs()
        sum_an = an.sum(0)
        sum_e, sum_o = even.sum(0), odd.sum(0)
        amplitude[o] = sum_an
        tau = float(torch.median(an[0])) / math.sqrt(math.log(4))
        x_energy = torch.sqrt(sum_e ** 2 + sum_o ** 2) + _EPS
        mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
        energy = (even * mean_e + odd * mean_o - (even * mean_o - odd * mean_e).abs()).sum(0)
        tau_all = tau * total_tau
        threshold = tau_all * math.sqrt(math.pi / 2) + cfg.k * tau_all * math.sqrt((4 - math.pi) / 2)
        energy = torch.clamp(energy - threshold, min=0.0)
        width = (sum_an / (an.amax(0) + _EPS) - 1) / (nscale - 1)
        weight = 1.0 / (1 + torch.exp((cfg.cutoff - width) * cfg.g))
        pc_o = weight * energy / sum_an
        covx, covy = pc_o * math.cos(angl), pc_o * math.sin(angl)
        covx2 += covx ** 2
        covy2 += covy ** 2
        covxy += covx * covy
    covx2 /= norient / 2
    covy2 /= norient / 2
    covxy *= 4 / norient
    denom = torch.sqrt(covxy ** 2 + (covx2 - covy2) ** 2) + _EPS
    M = (covy2 + covx2 + denom) / 2
    m = (covy2 + covx2 - denom) / 2
    return M.numpy(), m.numpy(), amplitude.numpy()


def _package(image: np.ndarray, cfg: PhaseCongruencyConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import phasecongruency as pc

    M, m, _or, _ft, EO, _T = pc.phasecong3(image.astype(np.float64), nscale=cfg.nscale, norient=cfg.norient,
                                           minwavelength=cfg.min_wavelength, mult=cfg.mult, sigmaonf=cfg.sigma_onf,
                                           k=cfg.k, cutoff=cfg.cutoff, g=cfg.g, backend="torch", return_eo=True)
    amp = np.stack([sum(np.abs(np.asarray(EO[s][o])) for s in range(cfg.nscale)) for o in range(cfg.norient)])
    return np.asarray(M), np.asarray(m), amp
