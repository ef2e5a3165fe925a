"""The descriptor protocol and the per-image bundle every descriptor receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, runtime_checkable

import numpy as np

from ..keypoints.phase_congruency import PCMaps


@dataclass
class PreparedImage:
    """One normalised image and what was derived from it once (shared by keypoints and descriptors).

    ``gray`` is (H, W) float32 in [0, 1]; ``color`` is (3, H, W) in [0, 1] for optical images when
    available; ``valid`` marks pixels with data. ``modality`` is "optical" or "sar"; ``land_use`` is one of
    the seven PromptMID classes (or None when unknown).
    """

    gray: np.ndarray
    valid: np.ndarray
    modality: str
    pc: PCMaps
    color: Optional[np.ndarray] = None
    land_use: Optional[str] = None
    # Per-image intermediates a describer may reuse between calls on the same image (e.g. the classical
    # integral images, needed by both the dense prior and the keypoint descriptors of the lite model).
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # not carried by replace()

    @property
    def shape(self) -> tuple[int, int]:
        return self.gray.shape  # type: ignore[return-value]


@runtime_checkable
class Describer(Protocol):
    """Computes descriptors at keypoints given in array-index pixel coordinates (x=col, y=row).

    Optional attributes a describer may add: ``detect(image) -> (N, 2)`` to use its own keypoints instead
    of PC-FAST, ``ratio`` (a Lowe ratio for matching), ``refine = False`` to skip sub-pixel refinement.
    """

    name: str

    def describe(self, image: PreparedImage, keypoints: np.ndarray) -> np.ndarray:
        """(N, 2) keypoints -> (N, D) float32 descriptors, each row L2-normalised (or all-zero if empty)."""
        ...


def l2_normalize(desc: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    norm = np.linalg.norm(desc, axis=1, keepdims=True)
    return (desc / np.maximum(norm, eps)).astype(np.float32)
