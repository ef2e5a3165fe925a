"""Processing: Register raster pair."""

from __future__ import annotations

from qgis.core import (Qgis, QgsProcessing, QgsProcessingException, QgsProcessingOutputFile, QgsProcessingOutputNumber,
                       QgsProcessingOutputRasterLayer, QgsProcessingOutputVectorLayer, QgsProcessingParameterEnum,
                       QgsProcessingParameterFolderDestination, QgsProcessingParameterRasterLayer)

from ..dialogs.register_dialog import LAND_USE, LEGENDS, file_source, points_source
from ..settings import ENGINES, TRANSFORMS
from .base import EngineAlgorithm

LAND_USE_OPTIONS = list(LAND_USE) + ["from land-cover layer"]


class RegisterRasterPair(EngineAlgorithm):
    tr_group = "Registration"

    def name(self) -> str:
        return "register_raster_pair"

    def displayName(self) -> str:  # noqa: N802
        return "Register raster pair (SAR onto optical)"

    def shortHelpString(self) -> str:  # noqa: N802
        return ("Matches a SAR raster against an optical reference raster with PromptMID (PC-FAST keypoints, "
                "modality-invariant descriptors, robust fitting) and writes GCPs (QGIS Georeferencer .points), a "
                "tie-point GeoPackage with residuals, and the SAR warped into the optical CRS.\n\n"
                "Land use is the text prompt of the full engine (and the class embedding of the default one); "
                "'from land-cover layer' takes the majority class of a land-cover raster over the overlap.\n"
                "Engines: default (shipped CPU model), promptmid (needs foundation weights, see settings), classical.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("OPTICAL", "Optical (reference) raster"))
        self.addParameter(QgsProcessingParameterRasterLayer("SAR", "SAR raster to register"))
        self.addParameter(QgsProcessingParameterEnum("LAND_USE", "Land use", LAND_USE_OPTIONS, defaultValue=LAND_USE.index("others")))
        self.addParameter(QgsProcessingParameterRasterLayer("LAND_COVER", "Land-cover raster (for 'from land-cover layer')", optional=True))
        self.addParameter(QgsProcessingParameterEnum("LEGEND", "Land-cover legend", list(LEGENDS.values()), defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("ENGINE", "Engine", list(ENGINES), defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("TRANSFORM", "Transform", list(TRANSFORMS), defaultValue=0))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer("WARPED", "Registered SAR"))
        self.addOutput(QgsProcessingOutputVectorLayer("TIE_POINTS", "Tie points", QgsProcessing.TypeVectorPoint))
        self.addOutput(QgsProcessingOutputFile("GCP_FILE", "GCP file (.points)"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Report (JSON)"))
        self.addOutput(QgsProcessingOutputNumber("N_INLIERS", "Tie points (inliers)"))
        self.addOutput(QgsProcessingOutputNumber("RMSE_PX", "GCP residual RMSE (pixels)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        optical = self.parameterAsRasterLayer(parameters, "OPTICAL", context)
        sar = self.parameterAsRasterLayer(parameters, "SAR", context)
        if optical is None or sar is None:
            raise QgsProcessingException("Both an optical and a SAR raster are required.")
        if optical.id() == sar.id() or file_source(optical) == file_source(sar):
            raise QgsProcessingException("The optical and SAR rasters must be two different rasters.")
        for role, layer in (("optical", optical), ("SAR", sar)):
            if not file_source(layer):
                raise QgsProcessingException(f"The {role} raster is not a local GDAL file.")
        lu_index = self.parameterAsEnum(parameters, "LAND_USE", context)
        job = {
            "action": "register",
            "optical": file_source(optical),
            "sar": file_source(sar),
            "output_dir": self.parameterAsString(parameters, "OUTPUT_FOLDER", context),
            "engine": ENGINES[self.parameterAsEnum(parameters, "ENGINE", context)],
            "transform": TRANSFORMS[self.parameterAsEnum(parameters, "TRANSFORM", context)],
            "land_use": LAND_USE[lu_index] if lu_index < len(LAND_USE) else None,
            "points_source": points_source(sar),
        }
        if lu_index == len(LAND_USE):
            lc = self.parameterAsRasterLayer(parameters, "LAND_COVER", context)
            if not file_source(lc):
                raise QgsProcessingException("'From land-cover layer' needs a land-cover raster file.")
            job["land_cover"] = file_source(lc)
            job["land_cover_legend"] = list(LEGENDS)[self.parameterAsEnum(parameters, "LEGEND", context)]
        r = self.run_engine(job, feedback)
        feedback.pushInfo(r["summary"])
        out = r["outputs"]
        return {"WARPED": out["warped"], "TIE_POINTS": f"{out['tiepoints']}|layername=tie_points", "GCP_FILE": out["points"],
                "REPORT": out["report"], "N_INLIERS": r["n_inliers"], "RMSE_PX": r["rmse_px"], "OUTPUT_FOLDER": job["output_dir"]}
