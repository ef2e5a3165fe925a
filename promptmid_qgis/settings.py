"""Plugin settings in QgsSettings under one prefix (``PromptMID/``)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from qgis.core import QgsSettings

PREFIX = "PromptMID/"
# Appended, never reordered: Processing models and batch runs store the engine as an index.
ENGINES = ("default", "promptmid", "classical", "dense", "lite")
ENGINE_LABELS = {"default": "Default (shipped CPU model)", "promptmid": "Full PromptMID (foundation weights)", "classical": "Classical (no weights)",
                 "dense": "Dense maps (the default model, by name)",
                 "lite": "Lite (earlier model: learned descriptors, handcrafted search maps)"}
DEVICES = ("auto", "cpu", "cuda")
TRANSFORMS = ("affine", "poly2", "tps", "similarity")  # appended, never reordered (Processing stores an index)
TRANSFORMS_SHOWN = ("similarity", "affine", "poly2", "tps")  # the dialogs' order (keyed by name): the default first
TRANSFORM_LABELS = {"affine": "Affine (polynomial 1)", "poly2": "Polynomial 2", "tps": "Thin-plate spline",
                    "similarity": "Similarity (rotation, scale, shift; as fitted)"}
LAND_USE = ("farmland", "city", "village", "water", "forest", "road", "others")
LAND_USE_LABELS = {"farmland": "Farmland", "city": "City", "village": "Village", "water": "Water", "forest": "Forest",
                   "road": "Road", "others": "Others (mixed / unknown)"}
DEFAULT_LAND_USE = "others"  # the neutral class: the same default in the dialog and in Processing


@dataclass
class PluginSettings:
    model_dir: str = ""
    device: str = "auto"
    engine: str = "default"
    transform: str = "similarity"
    python: str = ""  # engine interpreter; empty = auto-detect
    output_dir: str = ""
    land_use: str = DEFAULT_LAND_USE  # last land-use class chosen in the Register dialog

    @classmethod
    def load(cls) -> "PluginSettings":
        s = QgsSettings()
        return cls(**{f.name: str(s.value(PREFIX + f.name, f.default)) for f in fields(cls)})

    def save(self) -> None:
        s = QgsSettings()
        for f in fields(self):
            s.setValue(PREFIX + f.name, getattr(self, f.name))
