"""InfoNCE over corresponding descriptors (cosine similarity / temperature, symmetric cross-entropy)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(desc_a: torch.Tensor, desc_b: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Row i of ``desc_a`` (N, D) corresponds to row i of ``desc_b``; every other row is a negative."""
    a, b = F.normalize(desc_a, dim=1), F.normalize(desc_b, dim=1)
    logits = a @ b.t() / temperature
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
