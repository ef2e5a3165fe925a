"""OpenCV SIFT (own detector + descriptor) as a benchmark peer: the paper's weakest baseline.

It brings its own keypoints (``detect``), so PC-FAST is bypassed, and it is matched with Lowe's ratio
test (0.8) on top of mutual nearest neighbours, as is standard for SIFT.
"""

from __future__ import annotations

import cv2
import numpy as np

from .base import PreparedImage, l2_normalize

SIFT_RATIO = 0.8


class SiftDescriber:
    name = "sift"
    ratio = SIFT_RATIO
    guided = False  # a peer as users run it: whole-image SIFT + ratio test + USAC, no global search

    def __init__(self, max_keypoints: int = 4000) -> None:
        self.sift = cv2.SIFT_create(nfeatures=max_keypoints)
        self._cache: list[tuple[PreparedImage, np.ndarray, np.ndarray]] = []

    def _run(self, image: PreparedImage) -> tuple[np.ndarray, np.ndarray]:
        # detect() and describe() must share one computation per image: SIFT's keep-the-best-N step breaks
        # ties nondeterministically. The cache holds the image itself (not its id(), which Python reuses
        # once an object is freed) and the last two images, i.e. one pair.
        for cached, pts, desc in self._cache:
            if cached is image:
                return pts, desc
        img8 = (np.clip(image.gray, 0, 1) * 255).astype(np.uint8)
        kps, desc = self.sift.detectAndCompute(img8, image.valid.astype(np.uint8))
        pts = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
        desc = l2_normalize(np.sqrt(np.maximum(desc, 0))) if desc is not None else np.zeros((0, 128), np.float32)  # RootSIFT
        self._cache = (self._cache + [(image, pts, desc)])[-2:]
        return pts, desc

    def detect(self, image: PreparedImage) -> np.ndarray:
        return self._run(image)[0]

    def describe(self, image: PreparedImage, keypoints: np.ndarray) -> np.ndarray:
        pts, desc = self._run(image)
        if len(keypoints) != len(pts) or not np.array_equal(keypoints, pts):
            raise ValueError("SIFT describes its own keypoints only (call detect() first)")
        return desc
