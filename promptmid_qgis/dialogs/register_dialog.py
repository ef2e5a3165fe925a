"""The Register dialog: pick the optical and SAR layers, land use, engine, transform and output folder.

Validation is inline (a message line and a disabled OK button), never a pop-up.
"""

from __future__ import annotations

import os
from typing import Optional

from qgis.core import Qgis, QgsMapLayerProxyModel, QgsProject, QgsRasterLayer
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout

from .widgets import keyed_combo
from ..settings import ENGINE_LABELS, ENGINES, TRANSFORM_LABELS, TRANSFORMS, PluginSettings

LAND_USE = ("farmland", "city", "village", "water", "forest", "road", "others")
FROM_LAND_COVER = "__land_cover__"
LEGENDS = {"worldcover": "ESA WorldCover", "corine": "CORINE Land Cover", "whu-opt-sar": "WHU-OPT-SAR / GB/T 21010"}


def file_source(layer: Optional[QgsRasterLayer]) -> str:
    """The file behind a GDAL raster layer ('' for non-file providers such as WMS)."""
    if layer is None or layer.providerType() != "gdal":
        return ""
    path = layer.source().split("|")[0]
    return path if os.path.isfile(path) else ""


def points_source(sar_layer: Optional[QgsRasterLayer], qgis_version: int = Qgis.QGIS_VERSION_INT) -> str:
    """Georeferencer .points source convention of the running QGIS: pixels (y negative down) up to 3.24;
    from 3.26 a georeferenced source is given in its own layer CRS."""
    georeferenced = sar_layer is not None and sar_layer.crs().isValid()
    return "layer" if qgis_version >= 32600 and georeferenced else "pixel"


class RegisterDialog(QDialog):
    def __init__(self, settings: PluginSettings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PromptMID: register SAR onto optical")
        self.setMinimumWidth(520)
        self.settings = settings
        form = QFormLayout()
        self.optical = QgsMapLayerComboBox()
        self.optical.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.sar = QgsMapLayerComboBox()
        self.sar.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.land_use = keyed_combo(list(LAND_USE) + [FROM_LAND_COVER],
                                    {**{n: n.capitalize() for n in LAND_USE}, FROM_LAND_COVER: "From land-cover layer…"})
        self.land_cover = QgsMapLayerComboBox()
        self.land_cover.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.legend = keyed_combo(list(LEGENDS), LEGENDS)
        self.engine = keyed_combo(ENGINES, ENGINE_LABELS, settings.engine)
        self.transform = keyed_combo(TRANSFORMS, TRANSFORM_LABELS, settings.transform)
        self.output = QgsFileWidget()
        self.output.setStorageMode(QgsFileWidget.GetDirectory)
        self.output.setFilePath(settings.output_dir)
        self.add_warped = QCheckBox("Add the warped SAR layer")
        self.add_overlay = QCheckBox("Add the tie-point overlay (residuals, match vectors)")
        for cb in (self.add_warped, self.add_overlay):
            cb.setChecked(True)
        form.addRow("Optical (reference) layer", self.optical)
        form.addRow("SAR layer to register", self.sar)
        form.addRow("Land use (prompt)", self.land_use)
        form.addRow("Land-cover layer", self.land_cover)
        form.addRow("Land-cover legend", self.legend)
        form.addRow("Engine", self.engine)
        form.addRow("Transform", self.transform)
        form.addRow("Output folder", self.output)
        form.addRow(self.add_warped)
        form.addRow(self.add_overlay)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020")
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.button(QDialogButtonBox.Ok).setText("Register")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self._pick_defaults()
        for w in (self.optical, self.sar, self.land_cover):
            w.layerChanged.connect(self.validate)
        self.land_use.currentIndexChanged.connect(self.validate)
        self.output.fileChanged.connect(self.validate)
        self.validate()

    def _pick_defaults(self) -> None:
        """Guess the SAR layer: a single-band raster different from the optical one."""
        layers = [l for l in QgsProject.instance().mapLayers().values() if isinstance(l, QgsRasterLayer)]
        multi = [l for l in layers if l.bandCount() >= 3]
        single = [l for l in layers if l.bandCount() == 1]
        if multi:
            self.optical.setLayer(multi[0])
        if single:
            self.sar.setLayer(single[0])

    def problems(self) -> list[str]:
        out = []
        opt, sar = self.optical.currentLayer(), self.sar.currentLayer()
        if opt is None or sar is None:
            out.append("Choose an optical and a SAR raster layer.")
        else:
            if opt.id() == sar.id():
                out.append("The optical and SAR layers must be two different layers.")
            for role, layer in (("optical", opt), ("SAR", sar)):
                if not file_source(layer):
                    out.append(f"The {role} layer is not a local raster file (GDAL): PromptMID reads files only.")
            if not opt.crs().isValid():
                out.append("The optical layer has no CRS: it is the reference and must be georeferenced.")
        if self.land_use.currentData() == FROM_LAND_COVER and not file_source(self.land_cover.currentLayer()):
            out.append("Choose a land-cover raster layer (or pick a land-use class).")
        folder = self.output.filePath().strip()
        if not folder:
            out.append("Choose an output folder.")
        elif os.path.exists(folder) and not os.access(folder, os.W_OK):
            out.append("The output folder is not writable.")
        return out

    def validate(self, *_args) -> bool:
        problems = self.problems()
        lc = self.land_use.currentData() == FROM_LAND_COVER
        self.land_cover.setEnabled(lc)
        self.legend.setEnabled(lc)
        self.message.setText("\n".join(problems))
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(not problems)
        return not problems

    def accept(self) -> None:
        if self.validate():
            super().accept()

    def job(self) -> dict:
        """The engine job for the chosen settings (the Register action of promptmid.worker)."""
        lu = self.land_use.currentData()
        job = {
            "action": "register",
            "optical": file_source(self.optical.currentLayer()),
            "sar": file_source(self.sar.currentLayer()),
            "output_dir": self.output.filePath().strip(),
            "engine": self.engine.currentData(),
            "transform": self.transform.currentData(),
            "land_use": None if lu == FROM_LAND_COVER else lu,
            "model_dir": self.settings.model_dir or None,
            "device": self.settings.device,
            "points_source": points_source(self.sar.currentLayer()),
        }
        if lu == FROM_LAND_COVER:
            job["land_cover"] = file_source(self.land_cover.currentLayer())
            job["land_cover_legend"] = self.legend.currentData()
        return job
