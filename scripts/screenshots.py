"""Render the Register dialog and a map with the registration overlay to PNGs (offscreen, no display).

Usage: python scripts/screenshots.py OUT_DIR [--data ../shared/data/optical-sar]
Registers the demo pair (misregistered Sentinel-1 onto Sentinel-2) with the default engine first.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "optical-sar"))
    args = ap.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    from qgis.core import (QgsApplication, QgsMapRendererParallelJob, QgsMapSettings, QgsProject, QgsRasterLayer,
                           QgsRectangle)
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    app = QgsApplication([], True)
    app.initQgis()
    from promptmid.demo import run_demo
    from promptmid_qgis.dialogs.register_dialog import RegisterDialog
    from promptmid_qgis.layers import add_registration_outputs
    from promptmid_qgis.settings import PluginSettings

    demo = run_demo(args.data, str(out / "demo"))
    project = QgsProject.instance()
    optical = QgsRasterLayer(str(Path(args.data) / "test" / "s1s2_163" / "optical.tif"), "Sentinel-2 optical (s1s2_163)")
    sar = QgsRasterLayer(demo.misregistered_sar, "sar_misregistered")
    project.addMapLayers([optical, sar])

    dialog = RegisterDialog(PluginSettings(output_dir=str(out / "demo"), engine="default"))
    dialog.land_use.setCurrentIndex(dialog.land_use.findData("city"))
    dialog.resize(620, dialog.sizeHint().height())
    dialog.show()
    app.processEvents()
    dialog.grab().save(str(out / "register_dialog.png"))
    dialog.close()

    group = add_registration_outputs({"outputs": demo.registration.outputs}, project)
    layers = [n.layer() for n in group.findLayers() if n.name() != "sar_misregistered_registered.tif"]
    warped = next(n.layer() for n in group.findLayers() if n.name().endswith(".tif"))
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
    print(f"{out / 'register_dialog.png'}\n{out / 'map_overlay.png'}")
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main())
