"""Descriptors behind one interface: ``describe(image, keypoints) -> (N, D) L2-normalised float32``."""

from .base import Describer, PreparedImage
from .registry import available_engines, get_describer

__all__ = ["Describer", "PreparedImage", "available_engines", "get_describer"]
