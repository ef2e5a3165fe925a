"""The Register dialog: pick the optical and SAR layers, SAR band, land use, engine, transform and output folder.

Validation is inline (a message line and a disabled Register button), never a pop-up. Nothing slow runs
here: the engine environment is checked in the background by the plugin's EngineCheck, whose state
the dialog shows and follows.
"""

from __future__ import annotations

import os
from typing import Optional

from qgis.core import Qgis, QgsMapLayerProxyModel, QgsProject, QgsRasterLayer
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QHBoxLayout, QLabel,
                                 QPushButton, QVBoxLayout)

from ..engine_check import EngineCheck
from ..outputs import fresh_output_dir
from ..settings import (ENGINE_LABELS, ENGINES, LAND_USE, LAND_USE_LABELS, TRANSFORM_LABELS, TRANSFORMS_SHOWN,
                        PluginSettings)
from .widgets import keyed_combo

FROM_LAND_COVER = "__land_cover__"
LEGENDS = {"worldcover": "ESA WorldCover", "corine": "CORINE Land Cover", "whu-opt-sar": "WHU-OPT-SAR / GB/T 21010"}
MEAN_BANDS = "mean"
INTEGER_TYPES = (Qgis.Byte, Qgis.UInt16, Qgis.Int16, Qgis.UInt32, Qgis.Int32)
GEOREFERENCER_LAYER_SOURCE = 32204  # QGIS 3.22.4: the Georeferencer rework (qgis/QGIS#47141) reads layer coordinates


def file_source(layer: Optional[QgsRasterLayer]) -> str:
    """The file behind a GDAL raster layer ('' for non-file providers such as WMS)."""
    if layer is None or layer.providerType() != "gdal":
        return ""
    path = layer.source().split("|")[0]
    return path if os.path.isfile(path) else ""


def points_source(qgis_version: int = Qgis.QGIS_VERSION_INT) -> str:
    """The .points source convention for the running QGIS's Georeferencer (engine job key ``points_source``).

    From 3.22.4 on the Georeferencer reads source columns as the source layer's coordinates: "auto" lets
    the engine write layer coordinates for a SAR with a geotransform and pixels (y negative down) for
    one without (ungeoreferenced, or georeferenced by GCPs only: the Georeferencer fits and warps those
    in pixels). QGIS 3.20 - 3.22.3 converted pixel columns to layer coordinates on loading: "pixel".
    Checked in the QGIS 3.22.16 desktop by scripts/gui_check.py.
    """
    return "auto" if qgis_version >= GEOREFERENCER_LAYER_SOURCE else "pixel"


def band_choices(layer: Optional[QgsRasterLayer]) -> list[tuple[str, str]]:
    """(job value, label) for the SAR band combo: each band by number and name, then the mean intensity of
    all bands when there are several (dual-pol VV/VH stacks, Pauli composites)."""
    if layer is None or not layer.isValid():
        return [("1", "Band 1")]
    provider = layer.dataProvider()
    out = [(str(b), provider.displayBandName(b)) for b in range(1, layer.bandCount() + 1)]
    if layer.bandCount() > 1:
        out.append((MEAN_BANDS, "Mean intensity of all bands"))
    return out


def land_cover_problem(layer: Optional[QgsRasterLayer]) -> str:
    """Why ``layer`` cannot be a land-cover map ('' when it can): one band of integer class codes."""
    if not file_source(layer):
        return "Choose a land-cover raster layer (or pick a land-use class)."
    if layer.bandCount() != 1 or layer.dataProvider().sourceDataType(1) not in INTEGER_TYPES:
        kind = f"{layer.bandCount()} bands" if layer.bandCount() != 1 else "floating-point values"
        return (f"{layer.name()} does not look like a land-cover map ({kind}): choose a classified raster with one "
                "band of class codes (ESA WorldCover, CORINE, WHU-OPT-SAR).")
    return ""


def guess_pair(project: QgsProject) -> tuple[Optional[QgsRasterLayer], Optional[QgsRasterLayer]]:
    """(optical, SAR) guessed from a project's rasters: optical = the first with 3+ bands, SAR = the first
    other one with fewer bands (else any other raster). Used by the dialog and Processing's defaults."""
    layers = [l for l in project.mapLayers().values() if isinstance(l, QgsRasterLayer) and l.isValid()]
    optical = next((l for l in layers if l.bandCount() >= 3), None)
    others = [l for l in layers if optical is None or l.id() != optical.id()]
    sar = next((l for l in others if l.bandCount() < 3), others[0] if others else None)
    return optical, sar


class RegisterDialog(QDialog):
    # The (optical, SAR) layer ids of the last run in this QGIS session: a dialog reopened to change one
    # option (e.g. to keep an uncertain result) starts from the same pair, not from a fresh guess.
    last_pair: tuple[str, str] = ("", "")

    def __init__(self, settings: PluginSettings, parent=None, engine: Optional[EngineCheck] = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PromptMID: register SAR onto optical")
        self.setMinimumWidth(560)
        self.settings = settings
        self.engine_check = engine
        form = QFormLayout()
        self.optical = QgsMapLayerComboBox()
        self.optical.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.sar = QgsMapLayerComboBox()
        self.sar.setFilters(QgsMapLayerProxyModel.RasterLayer)
        for combo in (self.optical, self.sar):
            combo.setShowCrs(True)  # two layers of one name (e.g. "optical" from two folders) stay apart
        self.sar_band = QComboBox()
        self.land_use = keyed_combo(list(LAND_USE) + [FROM_LAND_COVER], {**LAND_USE_LABELS, FROM_LAND_COVER: "From land-cover layer…"},
                                    settings.land_use)
        self.land_cover = QgsMapLayerComboBox()
        self.land_cover.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.land_cover.setAllowEmptyLayer(True)
        self.land_cover.setLayer(None)  # never guess: a wrong layer silently gives the class "others"
        self.legend = keyed_combo(list(LEGENDS), LEGENDS)
        self.engine = keyed_combo(ENGINES, ENGINE_LABELS, settings.engine)
        self.transform = keyed_combo(TRANSFORMS_SHOWN, TRANSFORM_LABELS, settings.transform)
        self.land_use.setToolTip("The land-use class the SAR branch is prompted with (the model was trained with it). "
                                 "\"Others\" when the scene is mixed or unknown; or read it from a land-cover layer.")
        self.transform.setToolTip("How the SAR is warped through the GCPs. Similarity (rotation, scale, shift) is what the "
                                  "engine fits and checks; affine adds shear, polynomial 2 and thin-plate spline bend locally "
                                  "and need many well-spread tie points (they fall back to affine otherwise).")
        self.output = QgsFileWidget()
        self.output.setStorageMode(QgsFileWidget.GetDirectory)
        self.output.setFilePath(settings.output_dir)
        self.add_warped = QCheckBox("Add the warped SAR layer")
        self.add_overlay = QCheckBox("Add the tie-point overlay (residuals, match vectors)")
        for cb in (self.add_warped, self.add_overlay):
            cb.setChecked(True)
        self.keep_uncertain = QCheckBox("Keep uncertain results (write outputs with a warning)")
        self.keep_uncertain.setToolTip("When the engine is not sure the registration is right it refuses to write outputs; "
                                       "with this box it writes them and the result is marked uncertain.")
        form.addRow("Optical (reference) layer", self.optical)
        form.addRow("SAR layer to register", self.sar)
        form.addRow("SAR band", self.sar_band)
        form.addRow("Land use (prompt)", self.land_use)
        form.addRow("Land-cover layer", self.land_cover)
        form.addRow("Land-cover legend", self.legend)
        form.addRow("Engine", self.engine)
        form.addRow("Transform", self.transform)
        form.addRow("Output folder", self.output)
        form.addRow(self.add_warped)
        form.addRow(self.add_overlay)
        form.addRow(self.keep_uncertain)
        self.engine_state = QLabel()
        self.engine_state.setWordWrap(True)
        self.engine_state.setStyleSheet("color: #555555")
        self.settings_button = QPushButton("Settings…")
        self.settings_button.setToolTip("PromptMID settings: model folder, device, engine Python")
        self.settings_button.clicked.connect(self.open_settings)
        engine_row = QHBoxLayout()
        engine_row.addWidget(self.engine_state, 1)
        engine_row.addWidget(self.settings_button)
        self.note = QLabel()  # information, e.g. where a re-run goes
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #555555")
        self.message = QLabel()  # problems that block the run
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020")
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.button(QDialogButtonBox.Ok).setText("Register")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(engine_row)
        layout.addWidget(self.note)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self._pick_defaults()
        self._fill_bands()
        self.sar.layerChanged.connect(self._fill_bands)
        for w in (self.optical, self.sar, self.land_cover):
            w.layerChanged.connect(self.validate)
        for combo in (self.land_use, self.engine, self.sar_band):
            combo.currentIndexChanged.connect(self.validate)
        self.output.fileChanged.connect(self.validate)
        if engine is not None:
            engine.changed.connect(self.validate)
        self.validate()

    def _pick_defaults(self) -> None:
        project = QgsProject.instance()
        optical, sar = (project.mapLayer(i) for i in RegisterDialog.last_pair)
        if optical is None or sar is None:
            optical, sar = guess_pair(project)
        if optical is not None:
            self.optical.setLayer(optical)
        if sar is not None:
            self.sar.setLayer(sar)

    def _fill_bands(self, *_args) -> None:
        self.sar_band.blockSignals(True)
        self.sar_band.clear()
        for value, label in band_choices(self.sar.currentLayer()):
            self.sar_band.addItem(label, value)
        self.sar_band.blockSignals(False)

    def open_settings(self) -> None:
        from .settings_dialog import SettingsDialog

        if SettingsDialog(PluginSettings.load(), self).exec_():
            fresh = PluginSettings.load()
            self.settings.model_dir, self.settings.device, self.settings.python = fresh.model_dir, fresh.device, fresh.python
            if self.engine_check is not None:
                self.engine_check.ensure(fresh)
        self.validate()

    def output_dir(self) -> str:
        """Where this run writes: the chosen folder, or a fresh ``<sar>_runN`` inside it on a re-run."""
        folder, sar = self.output.filePath().strip(), file_source(self.sar.currentLayer())
        return fresh_output_dir(folder, sar)[0] if folder and sar else folder

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
        if self.land_use.currentData() == FROM_LAND_COVER:
            problem = land_cover_problem(self.land_cover.currentLayer())
            if problem:
                out.append(problem)
        out += self.engine_problems()
        folder = self.output.filePath().strip()
        if not folder:
            out.append("Choose an output folder.")
        elif os.path.exists(folder) and not os.access(folder, os.W_OK):
            out.append("The output folder is not writable.")
        return out

    def engine_problems(self) -> list[str]:
        """The full engine needs its model folder: said here, before the run, with the Settings button."""
        if self.engine.currentData() != "promptmid":
            return []
        model_dir = self.settings.model_dir
        if not model_dir or not os.path.isdir(model_dir):
            where = "is not set" if not model_dir else f"({model_dir}) does not exist"
            return [f"The full PromptMID engine needs its model folder (Stable Diffusion 1.5, ControlNet, DINOv2, VGG19), "
                    f"which {where}: set it with Settings…, or choose the Default engine."]
        missing = self.engine_check.missing_models() if self.engine_check is not None else []
        if missing:
            return ["The model folder lacks " + ", ".join(f"{m['key']} ({m['path']})" for m in missing) +
                    ": see Settings… > Check models, or choose the Default engine."]
        return []

    def notes(self) -> list[str]:
        out = []
        folder, sar = self.output.filePath().strip(), file_source(self.sar.currentLayer())
        if folder and sar:
            target, n = fresh_output_dir(folder, sar)
            if n > 1:
                out.append(f"This folder already holds results for {os.path.basename(sar)}: this run goes to "
                           f"{target} and its layers are marked (run {n}).")
        return out

    def validate(self, *_args) -> bool:
        problems = self.problems()
        lc = self.land_use.currentData() == FROM_LAND_COVER
        self.land_cover.setEnabled(lc)
        self.legend.setEnabled(lc)
        self.engine_state.setText(self.engine_check.summary() if self.engine_check is not None else "")
        for label, lines in ((self.message, problems), (self.note, self.notes())):
            label.setText("\n".join(lines))
            label.setVisible(bool(lines))  # a cleared message gives its space back
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(not problems)
        if self.isVisible():
            self.layout().activate()
            self.resize(self.width(), self.sizeHint().height())
        return not problems

    def accept(self) -> None:
        if self.validate():
            super().accept()

    def remember(self) -> None:
        """Store the choices the next dialog starts from (folder, land use; the layer pair for this session)."""
        optical, sar = self.optical.currentLayer(), self.sar.currentLayer()
        if optical is not None and sar is not None:
            RegisterDialog.last_pair = (optical.id(), sar.id())
        self.settings.output_dir = self.output.filePath().strip()
        self.settings.land_use = self.land_use.currentData()
        self.settings.save()

    def job(self) -> dict:
        """The engine job for the chosen settings (the Register action of promptmid.worker)."""
        lu = self.land_use.currentData()
        job = {
            "action": "register",
            "optical": file_source(self.optical.currentLayer()),
            "sar": file_source(self.sar.currentLayer()),
            "output_dir": self.output_dir(),
            "engine": self.engine.currentData(),
            "transform": self.transform.currentData(),
            "land_use": None if lu == FROM_LAND_COVER else lu,
            "model_dir": self.settings.model_dir or None,
            "device": self.settings.device,
            "points_source": points_source(),
            "sar_band": self.sar_band.currentData() or "1",
            "accept_uncertain": self.keep_uncertain.isChecked(),
        }
        if lu == FROM_LAND_COVER:
            job["land_cover"] = file_source(self.land_cover.currentLayer())
            job["land_cover_legend"] = self.legend.currentData()
        return job
