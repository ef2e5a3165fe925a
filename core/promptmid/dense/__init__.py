"""Dense feature maps for area-based matching: one interface, handcrafted (CFOG) and learned maps."""

from .base import DenseFeaturizer, DenseMap
from .cfog import CfogConfig, CfogFeaturizer

__all__ = ["DenseFeaturizer", "DenseMap", "CfogConfig", "CfogFeaturizer"]
