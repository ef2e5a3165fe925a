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
