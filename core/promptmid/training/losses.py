"""InfoNCE over corresponding descriptors (cosine similarity / temperature, symmetric cross-entropy)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(desc_a: torch.Tensor, desc_b: torch.Tensor, temperature: float = 0.07,
             exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Row i of ``desc_a`` (N, D) corresponds to row i of ``desc_b``; every other row is a negative, except
    where ``exclude`` (N, N, bool) is True: points a few pixels apart are not negatives of each other
    (a smooth dense descriptor cannot, and should not, tell them apart)."""
    a, b = F.normalize(desc_a, dim=1), F.normalize(desc_b, dim=1)
    logits = a @ b.t() / temperature
    if exclude is not None:
        exclude = exclude & ~torch.eye(len(a), dtype=torch.bool, device=a.device)
        logits = logits.masked_fill(exclude, float("-inf"))
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def hard_negative_nce(anchor: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
                      temperature: float = 0.07) -> torch.Tensor:
    """Cross-entropy of each anchor (N, D) against its positive (N, D) and its own hard negatives (N, K, D):
    descriptors of the same image a few pixels off the true position, which a dense map must tell apart."""
    a = F.normalize(anchor, dim=1)
    pos = (a * F.normalize(positive, dim=1)).sum(1, keepdim=True)
    neg = torch.einsum("nd,nkd->nk", a, F.normalize(negatives, dim=2))
    logits = torch.cat([pos, neg], 1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(a), dtype=torch.long, device=a.device))


def correlation_loss(template: torch.Tensor, tmask: torch.Tensor, search: torch.Tensor,
                     temperature: float = 0.05) -> torch.Tensor:
    """Translation-correlation loss: the normalised correlation (template and window as vectors) of a
    (N, D, t, t) template at every shift inside a (N, D, t + 2r, t + 2r) search window, softmax over the
    (2r+1)^2 shifts, cross-entropy with the true shift at the centre. Every other shift is a hard negative
    from the same image."""
    n, d, t, _ = template.shape
    side = search.shape[-1]
    r = (side - t) // 2
    out = 2 * r + 1
    tm = template * tmask[:, None]
    # Correlation by FFT (a direct grouped convolution with t x t kernels is ~10x slower to back-propagate
    # on CPU): circular cross-correlation of the zero-padded template, whose first (2r+1)^2 lags are the
    # valid shifts.
    spec = torch.fft.rfft2(search) * torch.conj(torch.fft.rfft2(tm, s=(side, side)))
    num = torch.fft.irfft2(spec.sum(1), s=(side, side))[:, :out, :out]
    energy = torch.fft.irfft2(torch.fft.rfft2((search ** 2).sum(1)) * torch.conj(torch.fft.rfft2(tmask, s=(side, side))),
                              s=(side, side))[:, :out, :out]
    t_norm = tm.flatten(1).norm(dim=1).clamp(min=1e-6)
    ncc = num / (t_norm[:, None, None] * energy.clamp(min=1e-9).sqrt())
    centre = torch.full((n,), out * r + r, dtype=torch.long, device=template.device)
    return F.cross_entropy(ncc.reshape(n, -1) / temperature, centre)
