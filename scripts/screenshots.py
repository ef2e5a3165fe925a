"""Render what a user sees to PNGs (offscreen, no display): the Register dialog, a finished run and an
uncertain run (message bar, layer tree with the run's group, map with the overlay), and the map overlay.

Usage: python scripts/screenshots.py OUT_DIR [--data ../shared/data/optical-sar]
Both runs are real: the demo pair (misregistered Sentinel-1 onto Sentinel-2, default engine) and a pair
of the test split the engine judges uncertain (GF-3 over water, kept with "Keep uncertain results").
The plugin's own code adds the layers and pushes the messages, into a window built like QGIS's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "core"))
UNCERTAIN_PAIR = "3mos_GF3_water_07"


class _Iface:
    """The parts of QgisInterface the plugin's Register flow uses, backed by real widgets."""

    def __init__(self, window, bar, view):
        self._window, self._bar, self._view = window, bar, view

    def mainWindow(self):  # noqa: N802
        return self._window

    def messageBar(self):  # noqa: N802
        return self._bar

    def layerTreeView(self):  # noqa: N802
        return self._view


class _Task:
    def __init__(self, result: dict, job: dict):
        from promptmid_qgis.worker_client import JobOutcome

        self.outcome, self.job = JobOutcome(result=result), job


def _settle(app, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _window(app):
    """A QGIS-like window: message bar over a layer tree and a map canvas."""
    from qgis.core import QgsLayerTreeModel, QgsProject
    from qgis.gui import QgsLayerTreeMapCanvasBridge, QgsLayerTreeView, QgsMapCanvas, QgsMessageBar
    from qgis.PyQt.QtCore import Qt
    from qgis.PyQt.QtWidgets import QSplitter, QVBoxLayout, QWidget

    window = QWidget()
    window.setWindowTitle("QGIS")
    window.resize(1200, 720)
    bar = QgsMessageBar(window)
    view = QgsLayerTreeView()
    model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot(), view)  # parented: the view does not own it
    model.setFlag(QgsLayerTreeModel.AllowNodeChangeVisibility)
    view.setModel(model)
    canvas = QgsMapCanvas()
    canvas.setCanvasColor(Qt.white)
    bridge = QgsLayerTreeMapCanvasBridge(QgsProject.instance().layerTreeRoot(), canvas)
    split = QSplitter()
    split.addWidget(view)
    split.addWidget(canvas)
    split.setSizes([400, 800])
    layout = QVBoxLayout(window)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(bar)
    layout.addWidget(split, 1)
    window.show()
    _settle(app)
    return window, bar, view, canvas, bridge


def _shoot_run(app, result: dict, job: dict, layers, png: Path) -> None:
    """The plugin's _finished on a real result, in the QGIS-like window; the map zoomed on the overlap."""
    from qgis.core import QgsProject

    from promptmid_qgis.plugin import PromptMIDPlugin

    project = QgsProject.instance()
    project.clear()
    project.addMapLayers(layers)
    window, bar, view, canvas, _bridge = _window(app)
    plugin = PromptMIDPlugin(_Iface(window, bar, view))
    plugin._finished(_Task(result, job))
    _settle(app, 0.5)
    view.expandAll()
    group = project.layerTreeRoot().children()[0]
    for node in project.layerTreeRoot().children()[1:]:
        node.setExpanded(False)
    group.setExpanded(True)
    canvas.setDestinationCrs(layers[0].crs())
    canvas.setExtent(layers[0].extent())
    canvas.refreshAllLayers()
    deadline = time.monotonic() + 30
    _settle(app, 0.5)
    while canvas.isDrawing() and time.monotonic() < deadline:
        _settle(app, 0.1)
    _settle(app, 0.5)
    window.grab().save(str(png))
    window.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "optical-sar"))
    args = ap.parse_args()
    out = Path(args.out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    work = Path(tempfile.mkdtemp(prefix="promptmid-screenshots-"))  # the runs' outputs: not next to the PNGs

    from qgis.core import (QgsApplication, QgsMapRendererParallelJob, QgsMapSettings, QgsProject, QgsRasterLayer,
                           QgsRectangle)
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    app = QgsApplication([], True)
    app.initQgis()
    from promptmid.config import EngineConfig
    from promptmid.demo import run_demo
    from promptmid.pipeline import register
    from promptmid_qgis.dialogs.register_dialog import RegisterDialog
    from promptmid_qgis.engine_check import EngineCheck
    from promptmid_qgis.layers import add_registration_outputs
    from promptmid_qgis.settings import PluginSettings

    demo = run_demo(str(data), str(work / "demo"))
    project = QgsProject.instance()
    optical = QgsRasterLayer(str(data / "test" / "s1s2_163" / "optical.tif"), "Sentinel-2 optical (s1s2_163)")
    sar = QgsRasterLayer(demo.misregistered_sar, "sar_misregistered")
    project.addMapLayers([optical, sar])

    # 1. the Register dialog, with the engine check done in the background as in QGIS
    engine = EngineCheck()
    engine.ensure(PluginSettings(python=sys.executable))
    deadline = time.monotonic() + 180
    while engine.busy and time.monotonic() < deadline:
        _settle(app, 0.1)
    dialog = RegisterDialog(PluginSettings(output_dir=str(work / "demo"), engine="default", python=sys.executable), engine=engine)
    dialog.land_use.setCurrentIndex(dialog.land_use.findData("city"))
    dialog.resize(620, dialog.sizeHint().height())
    dialog.show()
    dialog.validate()
    _settle(app)
    dialog.grab().save(str(out / "register_dialog.png"))
    dialog.close()

    # 2. a finished run: the demo's registration as the worker returns it
    reg = demo.registration
    result = {**asdict(reg), "summary": reg.summary()}
    _shoot_run(app, result, {"engine": "default"}, [QgsRasterLayer(optical.source(), optical.name()),
                                                   QgsRasterLayer(sar.source(), sar.name())], out / "run_finished.png")

    # 3. an uncertain run, kept with "Keep uncertain results"
    pair = data / "test" / UNCERTAIN_PAIR
    cfg = EngineConfig(engine="default")
    if hasattr(cfg, "accept_uncertain"):
        cfg.accept_uncertain = True
    unc = register(str(pair / "optical.tif"), str(pair / "sar.tif"), str(work / "uncertain"), cfg)
    print(f"{UNCERTAIN_PAIR}: {getattr(unc, 'verdict', '?')}")
    _shoot_run(app, {**asdict(unc), "summary": unc.summary()}, {"engine": "default", "accept_uncertain": True},
               [QgsRasterLayer(str(pair / "optical.tif"), "optical (GF-3 water)"), QgsRasterLayer(str(pair / "sar.tif"), "sar (GF-3 water)")],
               out / "run_uncertain.png")

    # 4. the map overlay alone (warped SAR over the optical, tie points by residual, match vectors)
    project.clear()
    optical = QgsRasterLayer(str(data / "test" / "s1s2_163" / "optical.tif"), "Sentinel-2 optical (s1s2_163)")
    project.addMapLayer(optical)
    group = add_registration_outputs({"outputs": demo.registration.outputs}, project)
    layers = [n.layer() for n in group.findLayers() if not n.name().endswith("_registered")]
    warped = next(n.layer() for n in group.findLayers() if n.name().endswith("_registered"))
    warped.renderer().setOpacity(0.6)
    settings = QgsMapSettings()
    settings.setLayers(layers + [warped, optical])
    settings.setDestinationCrs(optical.crs())
    e = optical.extent()
    settings.setExtent(QgsRectangle(e.xMinimum() + 0.25 * e.width(), e.yMinimum() + 0.25 * e.height(),
                                    e.xMinimum() + 0.75 * e.width(), e.yMinimum() + 0.75 * e.height()))
    settings.setOutputSize(QSize(900, 900))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(str(out / "map_overlay.png"))
    for name in ("register_dialog", "run_finished", "run_uncertain", "map_overlay"):
        print(out / f"{name}.png")
    project.clear()
    app.exitQgis()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
