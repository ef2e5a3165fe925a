"""Keypoint detection: PC-FAST (FAST corners on a phase-congruency map)."""

from .pcfast import PCFastConfig, detect_pcfast
from .phase_congruency import PhaseCongruencyConfig, PCMaps, phase_congruency

__all__ = ["PCFastConfig", "detect_pcfast", "PhaseCongruencyConfig", "PCMaps", "phase_congruency"]
