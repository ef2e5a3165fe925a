"""Processing: Register raster pair."""

from __future__ import annotations

from osgeo import ogr
from qgis.core import (QgsProcessing, QgsProcessingContext, QgsProcessingException, QgsProcessingLayerPostProcessorInterface,
                       QgsProcessingOutputFile, QgsProcessingOutputNumber, QgsProcessingOutputRasterLayer,
                       QgsProcessingOutputString, QgsProcessingOutputVectorLayer, QgsProcessingParameterBand,
                       QgsProcessingParameterBoolean, QgsProcessingParameterEnum, QgsProcessingParameterFolderDestination,
                       QgsProcessingParameterRasterLayer, QgsProcessingUtils, QgsProject, QgsRasterLayer, QgsVectorLayer)

from ..dialogs.register_dialog import LEGENDS, MEAN_BANDS, file_source, guess_pair, land_cover_problem, points_source
from ..layers import UNCERTAIN_SUFFIX, layer_names, style_tie_points, style_vectors
from ..outputs import fresh_output_dir
from ..settings import (DEFAULT_LAND_USE, ENGINE_LABELS, ENGINES, LAND_USE, LAND_USE_LABELS, TRANSFORM_LABELS, TRANSFORMS,
                        PluginSettings)
from .base import EngineAlgorithm

LAND_USE_OPTIONS = [LAND_USE_LABELS[k] for k in LAND_USE] + ["From land-cover layer…"]


class _Style(QgsProcessingLayerPostProcessorInterface):
    """Styles a loaded output layer (tie points by residual, match vectors) and moves it into the run's
    group, as the Register dialog adds them, on the main thread. (Processing puts loaded layers wherever
    the layer tree's current group is, which may be another run's group.)"""

    kept: list = []  # Processing does not own post-processors: keep the latest alive until they have run

    def __init__(self, styler, group: str) -> None:
        super().__init__()
        self.styler, self.group = styler, group

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: N802
        if isinstance(layer, QgsVectorLayer) and layer.isValid() and self.styler is not None:
            self.styler(layer)
        into_group(layer, self.group, context.project() or QgsProject.instance())

    @classmethod
    def create(cls, styler, group: str) -> "_Style":
        cls.kept = cls.kept[-20:] + [cls(styler, group)]
        return cls.kept[-1]


def into_group(layer, group_name: str, project: QgsProject) -> None:
    """Move ``layer``'s node into the top-level group ``group_name`` (made at the top when missing): the
    overlay above, the warped raster at the bottom, as the dialog orders them."""
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    if node is None:
        return
    group = root.findGroup(group_name)
    if group is None or group.parent() is not root:
        group = root.insertGroup(0, group_name)
    parent = node.parent()
    if parent is group:
        return
    if isinstance(layer, QgsRasterLayer):
        group.addLayer(layer)
    else:
        group.insertLayer(0, layer)
    if parent is not None:
        parent.removeChildNode(node)


class RegisterRasterPair(EngineAlgorithm):
    tr_group = "Registration"

    def name(self) -> str:
        return "register_raster_pair"

    def displayName(self) -> str:  # noqa: N802
        return "Register raster pair (SAR onto optical)"

    def shortHelpString(self) -> str:  # noqa: N802
        return ("Registers a SAR raster onto an optical reference raster: a global search for where the SAR lies, "
                "tie points matched near their predicted positions (the engine's learned maps and PromptMID descriptors), "
                "a robust fit and a verdict (registered / uncertain). Writes GCPs (QGIS Georeferencer .points), a "
                "tie-point GeoPackage with residuals, and the SAR warped into the optical CRS. The registered SAR, the "
                "tie points and the match vectors are added to the map, in their own group, when the run ends.\n\n"
                "SAR band: the band to match, or the mean intensity of all bands (dual-pol stacks, composites).\n"
                "Land use is the text prompt of the full engine (and the class embedding of the default one); "
                "'From land-cover layer' takes the majority class of a land-cover raster over the overlap.\n"
                "An uncertain result is refused unless 'Keep uncertain results' is ticked; then it is written and marked.\n"
                "A folder that already holds results for the same SAR gets a fresh sub-folder <sar>_run<N>.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        # Defaults follow the open project and the Register dialog's remembered choices (the algorithm is
        # re-initialised each time its dialog opens).
        settings = PluginSettings.load()
        optical, sar = guess_pair(QgsProject.instance())
        land_use = settings.land_use if settings.land_use in LAND_USE else DEFAULT_LAND_USE
        self.addParameter(QgsProcessingParameterRasterLayer("OPTICAL", "Optical (reference) raster",
                                                            defaultValue=optical.id() if optical else None))
        self.addParameter(QgsProcessingParameterRasterLayer("SAR", "SAR raster to register", defaultValue=sar.id() if sar else None))
        self.addParameter(QgsProcessingParameterBand("SAR_BAND", "SAR band", defaultValue=1, parentLayerParameterName="SAR",
                                                     optional=True))
        self.addParameter(QgsProcessingParameterBoolean("SAR_MEAN", "Use the mean intensity of all SAR bands",
                                                        defaultValue=False))
        self.addParameter(QgsProcessingParameterEnum("LAND_USE", "Land use", LAND_USE_OPTIONS, defaultValue=LAND_USE.index(land_use)))
        self.addParameter(QgsProcessingParameterRasterLayer("LAND_COVER", "Land-cover raster (for 'From land-cover layer')", optional=True))
        self.addParameter(QgsProcessingParameterEnum("LEGEND", "Land-cover legend", list(LEGENDS.values()), defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum("ENGINE", "Engine", [ENGINE_LABELS[e] for e in ENGINES],
                                                     defaultValue=ENGINES.index(settings.engine) if settings.engine in ENGINES else 0))
        self.addParameter(QgsProcessingParameterEnum("TRANSFORM", "Transform", [TRANSFORM_LABELS[t] for t in TRANSFORMS],
                                                     defaultValue=TRANSFORMS.index(settings.transform) if settings.transform in TRANSFORMS else 0))
        self.addParameter(QgsProcessingParameterBoolean("KEEP_UNCERTAIN", "Keep uncertain results (write outputs with a warning)",
                                                        defaultValue=False))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT_FOLDER", "Output folder"))
        self.addOutput(QgsProcessingOutputRasterLayer("WARPED", "Registered SAR"))
        self.addOutput(QgsProcessingOutputVectorLayer("TIE_POINTS", "Tie points", QgsProcessing.TypeVectorPoint))
        self.addOutput(QgsProcessingOutputFile("GCP_FILE", "GCP file (.points)"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Report (JSON)"))
        self.addOutput(QgsProcessingOutputNumber("N_INLIERS", "Consistent tie points (the verdict's count)"))
        self.addOutput(QgsProcessingOutputNumber("N_GCPS", "GCPs written (the tie points layer's points)"))
        self.addOutput(QgsProcessingOutputNumber("RMSE_PX", "GCP residual RMSE (pixels)"))
        self.addOutput(QgsProcessingOutputString("VERDICT", "Verdict (registered / uncertain)"))

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
        band = self.parameterAsInt(parameters, "SAR_BAND", context) or 1  # optional: band 1 when left out
        if band > sar.bandCount():
            raise QgsProcessingException(f"The SAR raster has {sar.bandCount()} band(s): there is no band {band}.")
        sar_band = MEAN_BANDS if self.parameterAsBool(parameters, "SAR_MEAN", context) else str(band)
        lu_index = self.parameterAsEnum(parameters, "LAND_USE", context)
        folder = self.parameterAsString(parameters, "OUTPUT_FOLDER", context)
        output_dir, run = fresh_output_dir(folder, file_source(sar))
        if run > 1:
            feedback.pushInfo(f"{folder} already holds results for {sar.name()}: this run writes into {output_dir}.")
        job = {
            "action": "register",
            "optical": file_source(optical),
            "sar": file_source(sar),
            "output_dir": output_dir,
            "engine": ENGINES[self.parameterAsEnum(parameters, "ENGINE", context)],
            "transform": TRANSFORMS[self.parameterAsEnum(parameters, "TRANSFORM", context)],
            "land_use": LAND_USE[lu_index] if lu_index < len(LAND_USE) else None,
            "points_source": points_source(),
            "sar_band": sar_band,
            "accept_uncertain": self.parameterAsBool(parameters, "KEEP_UNCERTAIN", context),
        }
        if lu_index == len(LAND_USE):
            lc = self.parameterAsRasterLayer(parameters, "LAND_COVER", context)
            problem = land_cover_problem(lc)
            if problem:
                raise QgsProcessingException(problem)
            job["land_cover"] = file_source(lc)
            job["land_cover_legend"] = list(LEGENDS)[self.parameterAsEnum(parameters, "LEGEND", context)]
        r = self.run_engine(job, feedback)
        if r.get("summary") and r["summary"] != self.last_message:  # the engine's last progress line is the summary
            feedback.pushInfo(r["summary"])
        uncertain = r.get("verdict") == "uncertain"
        if uncertain:
            feedback.pushWarning(f"Uncertain registration: {r.get('verdict_reason') or 'see the report'}. Outputs kept as asked.")
        for warning in r.get("warnings") or []:
            feedback.pushWarning(warning)
        out = r["outputs"]
        tie_points = f"{out['tiepoints']}|layername=tie_points"
        self._load_on_completion(context, r, tie_points, uncertain)
        return {"WARPED": out["warped"], "TIE_POINTS": tie_points, "GCP_FILE": out["points"], "REPORT": out["report"],
                # the counts the summary states: consistent tie points of the verdict, and the GCPs written
                "N_INLIERS": (r.get("evidence") or {}).get("n_inliers", r["n_inliers"]), "N_GCPS": r["n_gcps"],
                "RMSE_PX": r["rmse_px"], "VERDICT": r.get("verdict", "registered"),
                "OUTPUT_FOLDER": output_dir}

    @staticmethod
    def _load_on_completion(context: QgsProcessingContext, result: dict, tie_points: str, uncertain: bool) -> None:
        """The outputs are files the engine names, not destination parameters, so they are handed to
        Processing's "load layers on completion" list explicitly, like GDAL's algorithms' outputs load."""
        names = layer_names(result)
        suffix = UNCERTAIN_SUFFIX if uncertain else ""
        gpkg = result["outputs"]["tiepoints"]
        raster, vector = QgsProcessingUtils.LayerHint.Raster, QgsProcessingUtils.LayerHint.Vector
        layers = [(result["outputs"]["warped"], names["warped"] + suffix, "WARPED", None, raster)]
        if _has_layer(gpkg, "match_vectors"):  # only for a georeferenced SAR
            layers.append((f"{gpkg}|layername=match_vectors", names["match_vectors"], "TIE_POINTS", style_vectors, vector))
        layers.append((tie_points, names["tie_points"] + suffix, "TIE_POINTS", style_tie_points, vector))
        for path, name, output, styler, hint in layers:
            details = QgsProcessingContext.LayerDetails(name, context.project(), output)
            details.layerTypeHint = hint  # without it the .tif is first tried as a vector (an OGR warning in the log)
            details.setPostProcessor(_Style.create(styler, names["group"]))
            context.addLayerToLoadOnCompletion(path, details)


def _has_layer(gpkg: str, name: str) -> bool:
    ds = ogr.Open(gpkg)
    try:
        return ds is not None and ds.GetLayerByName(name) is not None
    finally:
        ds = None
