"""Processing: Evaluate matching (SR / NCM / RMSE under the paper's protocol)."""

from __future__ import annotations

import json

from qgis.core import (QgsProcessingOutputNumber, QgsProcessingOutputString, QgsProcessingParameterEnum,
                       QgsProcessingParameterFile, QgsProcessingParameterFileDestination, QgsProcessingParameterNumber)

from ..settings import ENGINE_LABELS, ENGINES
from .base import EngineAlgorithm


class EvaluateMatching(EngineAlgorithm):
    tr_group = "Evaluation"

    def name(self) -> str:
        return "evaluate_matching"

    def displayName(self) -> str:  # noqa: N802
        return "Evaluate matching (SR / NCM / RMSE)"

    def shortHelpString(self) -> str:  # noqa: N802
        return ("Runs the PromptMID paper's protocol on a folder of co-registered pairs: the optical image is warped "
                "by a seeded random rotation (+-10 deg) and scale (0.8-1); NCM = inlier matches within 3 px of the truth; "
                "SR = share of pairs with NCM >= 10; RMSE over correct matches; plus the registration error of the "
                "estimated transform. Writes a JSON summary.")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("PAIRS", "Pairs folder", behavior=QgsProcessingParameterFile.Folder))
        self.addParameter(QgsProcessingParameterEnum("ENGINE", "Engine", [ENGINE_LABELS[e] for e in ENGINES], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber("SEED", "Seed", QgsProcessingParameterNumber.Integer, 0))
        self.addParameter(QgsProcessingParameterNumber("LIMIT", "Only the first N pairs (0 = all)", QgsProcessingParameterNumber.Integer, 0, minValue=0))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Summary (JSON)", "JSON (*.json)"))
        for key, label in (("SR", "Success rate (%)"), ("NCM", "Mean NCM"), ("RMSE", "Mean RMSE (px)"), ("REG_ERR_MEDIAN", "Median registration error (px)")):
            self.addOutput(QgsProcessingOutputNumber(key, label))
        self.addOutput(QgsProcessingOutputString("TABLE", "Table (Markdown)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        limit = self.parameterAsInt(parameters, "LIMIT", context)
        r = self.run_engine({"action": "evaluate", "pairs_dir": self.parameterAsFile(parameters, "PAIRS", context),
                             "engine": ENGINES[self.parameterAsEnum(parameters, "ENGINE", context)],
                             "seed": self.parameterAsInt(parameters, "SEED", context), "limit": limit or None}, feedback)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        table = r.pop("markdown")
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(r, fh, indent=2)
        feedback.pushInfo(table)
        return {"OUTPUT": out, "SR": r["sr"], "NCM": r["ncm"], "RMSE": r["rmse"] if r["rmse"] is not None else float("nan"),
                "REG_ERR_MEDIAN": r["reg_err_median_px"] if r["reg_err_median_px"] is not None else float("inf"), "TABLE": table}
