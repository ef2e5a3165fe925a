"""Processing: Train descriptor (stage 2) and Fine-tune diffusion ControlNet (stage 1)."""

from __future__ import annotations

from qgis.core import (QgsProcessingOutputNumber, QgsProcessingParameterEnum, QgsProcessingParameterFile,
                       QgsProcessingParameterFileDestination, QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterNumber)

from .base import EngineAlgorithm

PROFILES = ("lite", "full")
PROFILE_LABELS = {"lite": "Lite (the shipped CPU model's network)", "full": "Full (needs the foundation weights of the model folder)"}


class TrainDescriptor(EngineAlgorithm):
    tr_group = "Training"

    def name(self) -> str:
        return "train_descriptor"

    def displayName(self) -> str:  # noqa: N802
        return "Train descriptor (stage 2, InfoNCE)"

    def shortHelpString(self) -> str:  # noqa: N802
        return ("Trains the PromptMID descriptor heads on a folder of co-registered pairs (one sub-folder per pair "
                "with optical.tif, sar.tif, meta.json), with InfoNCE between SAR points and the same points in a "
                "randomly rotated (+-10 deg) and scaled (0.8-1) optical image. 'lite' is the CPU model; 'full' needs the "
                "foundation weights of the model directory (settings). Resumes from a previous run's state.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("PAIRS", "Training pairs folder", behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterEnum("PROFILE", "Model profile", [PROFILE_LABELS[p] for p in PROFILES], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber("STEPS", "Steps", QgsProcessingParameterNumber.Integer, 3500, minValue=1))
        self.addParameter(QgsProcessingParameterNumber("LR", "Learning rate", QgsProcessingParameterNumber.Double, 3e-3, minValue=1e-7))
        self.addParameter(QgsProcessingParameterNumber("SEED", "Seed", QgsProcessingParameterNumber.Integer, 0))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Weights", "Safetensors (*.safetensors)"))
        self.addOutput(QgsProcessingOutputNumber("STEPS_DONE", "Steps trained"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        r = self.run_engine({"action": "train_descriptor", "pairs_dir": self.parameterAsFile(parameters, "PAIRS", context),
                             "profile": PROFILES[self.parameterAsEnum(parameters, "PROFILE", context)],
                             "steps": self.parameterAsInt(parameters, "STEPS", context),
                             "lr": self.parameterAsDouble(parameters, "LR", context),
                             "seed": self.parameterAsInt(parameters, "SEED", context), "out": out}, feedback)
        feedback.pushInfo(f"validation: {r.get('validation')}")
        return {"OUTPUT": out, "STEPS_DONE": r["steps"]}


class FinetuneControlNet(EngineAlgorithm):
    tr_group = "Training"

    def name(self) -> str:
        return "finetune_controlnet"

    def displayName(self) -> str:  # noqa: N802
        return "Fine-tune diffusion ControlNet (stage 1)"

    def shortHelpString(self) -> str:  # noqa: N802
        return ("Fine-tunes the SAR ControlNet of Stable Diffusion 1.5 (SAR + land-use prompt -> optical), the standard "
                "diffusers ControlNet recipe with SD frozen. Needs Stable Diffusion 1.5 in the model directory; a GPU is "
                "strongly recommended. Writes a diffusers ControlNet folder (default: MODEL_DIR/controlnet-sar).")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("PAIRS", "Training pairs folder", behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterFile("MODEL_DIR", "Model directory", behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterNumber("STEPS", "Steps", QgsProcessingParameterNumber.Integer, 1000, minValue=1))
        self.addParameter(QgsProcessingParameterNumber("RESOLUTION", "Crop size (pixels, multiple of 64)",
                                                       QgsProcessingParameterNumber.Integer, 512, minValue=64))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "ControlNet folder"))
        self.addOutput(QgsProcessingOutputNumber("STEPS_DONE", "Steps trained"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        out = self.parameterAsString(parameters, "OUTPUT", context)
        r = self.run_engine({"action": "train_controlnet", "pairs_dir": self.parameterAsFile(parameters, "PAIRS", context),
                             "model_dir": self.parameterAsFile(parameters, "MODEL_DIR", context),
                             "steps": self.parameterAsInt(parameters, "STEPS", context),
                             "resolution": self.parameterAsInt(parameters, "RESOLUTION", context), "out": out}, feedback)
        return {"OUTPUT": r["controlnet"], "STEPS_DONE": r["steps"]}
