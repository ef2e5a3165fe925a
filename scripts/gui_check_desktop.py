"""Runs *inside* the QGIS desktop (``qgis --code scripts/gui_check_desktop.py``), started by gui_check.py.

Drives the real Georeferencer the way a user does, through its own actions and dialogs: Raster >
Georeferencer, Open Raster (file dialog), Load GCP Points (file dialog), Transformation Settings
(transform type, target CRS, output file), Start Georeferencing. For each case of the plan it records what
the user sees: the GCP table (source/destination coordinates, residuals), the mean error in the status
bar, how many GCP markers lie on the loaded raster, and the written output raster. Screenshots of the
Georeferencer window go next to the result file.

The plan is a JSON file named by $PROMPTMID_GUI_PLAN: {"result": path, "cases": [{"name", "raster",
"points", "output", "transform": "Polynomial 1" | "Helmert" | "Polynomial 2" | "Thin Plate Spline", "crs": authid}]}.
Unexpected message boxes are answered (Discard/No/OK) and their text recorded, so nothing blocks.
"""

import json
import os
import traceback

from qgis.core import Qgis, QgsCoordinateReferenceSystem, QgsRectangle
from qgis.gui import QgsFileWidget, QgsMapCanvas, QgsProjectionSelectionWidget
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtTest import QTest
from qgis.PyQt.QtWidgets import (QAction, QApplication, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QLabel,
                                 QLineEdit, QMessageBox, QTableView)
from qgis.utils import iface

PLAN = json.load(open(os.environ["PROMPTMID_GUI_PLAN"], encoding="utf-8"))
RESULT: dict = {"cases": [], "message_boxes": [], "qgis": Qgis.QGIS_VERSION}


def _save() -> None:
    with open(PLAN["result"] + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(RESULT, fh, indent=1, default=str)
    os.replace(PLAN["result"] + ".tmp", PLAN["result"])


def _action(widget, name: str) -> QAction:
    return next(a for a in widget.findChildren(QAction) if a.objectName() == name)


def _georeferencer():
    return next(w for w in QApplication.topLevelWidgets() if w.objectName() == "QgsGeorefPluginGuiBase")


def _when_dialog(kind, handle, timeout_ms: int = 20000) -> None:
    """Before triggering an action that opens a modal dialog: poll for it and hand it to ``handle``."""
    waited = [0]

    def poll():
        found = [w for w in QApplication.topLevelWidgets() if isinstance(w, kind) and w.isVisible()]
        if found:
            handle(found[0])
        elif waited[0] < timeout_ms:
            waited[0] += 100
            QTimer.singleShot(100, poll)

    QTimer.singleShot(100, poll)


def _type_file_name(path: str):
    """Type the path into the file dialog's name field and press Enter (what a user does)."""
    def handle(dialog: QFileDialog) -> None:
        edit = dialog.findChild(QLineEdit, "fileNameEdit")
        edit.setText(path)
        QTest.keyClick(edit, Qt.Key_Return)
    return handle


def _answer_message_boxes() -> None:
    """Answer any message box that shows up (records its text): Discard / No / OK."""
    for box in [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]:
        RESULT["message_boxes"].append(box.text())
        for std in (QMessageBox.Discard, QMessageBox.No, QMessageBox.Ok, QMessageBox.Close):
            button = box.button(std)
            if button is not None:
                button.click()
                break
    QTimer.singleShot(300, _answer_message_boxes)


def _table(georef) -> tuple[list, list]:
    model = georef.findChildren(QTableView)[0].model()
    headers = [model.headerData(c, Qt.Horizontal) for c in range(model.columnCount())]
    rows = [[model.index(r, c).data() for c in range(model.columnCount())] for r in range(model.rowCount())]
    return headers, rows


def _markers_on_raster(canvas: QgsMapCanvas, rows: list, headers: list) -> int:
    """GCP markers drawn on the raster: source points inside the raster layer's extent."""
    if not canvas.layers():
        return 0
    extent: QgsRectangle = canvas.layers()[0].extent()
    ix, iy = headers.index("Source X"), headers.index("Source Y")
    n = 0
    for row in rows:
        try:
            x, y = float(row[ix]), float(row[iy])
        except (TypeError, ValueError):
            continue
        n += extent.xMinimum() <= x <= extent.xMaximum() and extent.yMinimum() <= y <= extent.yMaximum()
    return n


def _set_transform(case: dict):
    def handle(dialog: QDialog) -> None:
        combo = dialog.findChild(QComboBox, "cmbTransformType")
        index = combo.findText(case["transform"])
        if index < 0:  # never fall back silently to whatever the dialog had: say so and close it
            case["_error"] = f"no transform '{case['transform']}' in {[combo.itemText(i) for i in range(combo.count())]}"
            dialog.reject()
            return
        combo.setCurrentIndex(index)
        resampling = dialog.findChild(QComboBox, "cmbResampling")
        resampling.setCurrentIndex(max(0, resampling.findText("Nearest Neighbour")))
        dialog.findChild(QgsFileWidget, "mOutputRaster").setFilePath(case["output"])
        crs_widget = dialog.findChild(QgsProjectionSelectionWidget, "mCrsSelector")
        if crs_widget is not None:
            crs_widget.setCrs(QgsCoordinateReferenceSystem(case["crs"]))
        dialog.findChild(QDialogButtonBox, "buttonBox").button(QDialogButtonBox.Ok).click()
    return handle


def _run_case(case: dict) -> dict:
    out = {"name": case["name"]}
    georef = _georeferencer()
    canvas = georef.findChild(QgsMapCanvas, "georefCanvas")
    _when_dialog(QFileDialog, _type_file_name(case["raster"]))
    _action(georef, "mActionOpenRaster").trigger()
    _when_dialog(QFileDialog, _type_file_name(case["points"]))
    _action(georef, "mActionLoadGCPpoints").trigger()
    QApplication.processEvents()
    headers, rows = _table(georef)
    out.update(headers=headers, n_rows=len(rows), markers_on_raster=_markers_on_raster(canvas, rows, headers),
               layer_extent=canvas.layers()[0].extent().toString(6) if canvas.layers() else None,
               loaded_rows=rows[:3])
    _when_dialog(QDialog, _set_transform(case))
    _action(georef, "mActionTransformSettings").trigger()
    QApplication.processEvents()
    if case.get("_error"):
        raise RuntimeError(case["_error"])
    headers, rows = _table(georef)
    out["rows"] = rows
    out["labels"] = [lbl.text() for lbl in georef.statusBar().findChildren(QLabel) if lbl.text()]
    _action(georef, "mActionZoomToLayer").trigger()
    QApplication.processEvents()
    georef.grab().save(os.path.join(os.path.dirname(PLAN["result"]), f"georeferencer_{case['name']}.png"))
    if os.path.exists(case["output"]):
        os.remove(case["output"])
    _action(georef, "mActionStartGeoref").trigger()
    QApplication.processEvents()
    out["output_written"] = os.path.isfile(case["output"])
    out["georef_messages"] = [lbl.text() for lbl in georef.findChildren(QLabel) if lbl.isVisible() and lbl.text()][:20]
    return out


def main() -> None:
    _answer_message_boxes()
    try:
        _action(iface.mainWindow(), "mActionShowGeoreferencer").trigger()
        QApplication.processEvents()
        for case in PLAN["cases"]:
            try:
                RESULT["cases"].append(_run_case(case))
            except Exception:  # record and go on with the next case
                RESULT["cases"].append({"name": case["name"], "error": traceback.format_exc()})
            _save()
    except Exception:
        RESULT["error"] = traceback.format_exc()
    RESULT["done"] = True
    _save()


QTimer.singleShot(int(os.environ.get("PROMPTMID_GUI_DELAY_MS", "3000")), main)
