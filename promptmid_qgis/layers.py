"""Adding the engine's outputs to the project: warped SAR, styled tie points and match vectors in a group."""

from __future__ import annotations

import os
from typing import Optional

from qgis.core import (QgsClassificationQuantile, QgsGraduatedSymbolRenderer, QgsLayerTreeGroup, QgsProject,
                       QgsRasterLayer, QgsSingleSymbolRenderer, QgsStyle, QgsSymbol, QgsVectorLayer)
from qgis.PyQt.QtGui import QColor

from .outputs import run_label

UNCERTAIN_SUFFIX = " (uncertain)"


def style_tie_points(layer: QgsVectorLayer, field: str = "residual_px", classes: int = 5) -> None:
    """Graduated colours by residual (green = small, red = large), quantile classes computed from this
    layer's own data, labelled in pixels with one decimal ("0.2 - 2.6 px")."""
    renderer = QgsGraduatedSymbolRenderer(field)
    symbol = QgsSymbol.defaultSymbol(layer.geometryType())
    symbol.setSize(2.6)
    renderer.setSourceSymbol(symbol)
    method = QgsClassificationQuantile()
    method.setLabelFormat("%1 - %2 px")
    method.setLabelPrecision(1)
    method.setLabelTrimTrailingZeroes(False)
    renderer.setClassificationMethod(method)
    ramp = QgsStyle.defaultStyle().colorRamp("RdYlGn")
    if ramp is not None:
        ramp.invert()
        renderer.setSourceColorRamp(ramp)
    renderer.updateClasses(layer, classes)
    layer.setRenderer(renderer)


def style_vectors(layer: QgsVectorLayer) -> None:
    """Orange lines. A new renderer (not a changed symbol) so a layer already in the project, as Processing
    loads it, updates its legend too."""
    symbol = QgsSymbol.defaultSymbol(layer.geometryType())
    symbol.setColor(QColor(255, 170, 0))
    symbol.setWidth(0.4)
    layer.setRenderer(QgsSingleSymbolRenderer(symbol))


def layer_names(result: dict) -> dict[str, str]:
    """Names of a run's group and layers: the SAR's name, and "(run N)" for a re-run into the same folder."""
    warped = result["outputs"]["warped"]
    stem = os.path.basename(warped)[: -len("_registered.tif")] if warped.endswith("_registered.tif") else os.path.splitext(os.path.basename(warped))[0]
    label = run_label(os.path.dirname(warped), stem + ".tif")
    uncertain = UNCERTAIN_SUFFIX if result.get("verdict") == "uncertain" else ""
    return {"group": f"PromptMID: {stem}_registered{label}{uncertain}", "warped": f"{stem}_registered{label}",
            "tie_points": f"{stem} tie points{label}", "match_vectors": f"{stem} match vectors{label}"}


def add_registration_outputs(result: dict, project: QgsProject | None = None, group_name: str = "",
                             add_warped: bool = True, add_overlay: bool = True) -> Optional[QgsLayerTreeGroup]:
    """Add the warped SAR and/or the tie-point overlay (tie points, match vectors) under one group at the
    top of the layer tree. Returns the group (None when nothing is to be added). Layers that fail to load
    are skipped (their paths are in the report)."""
    if not (add_warped or add_overlay):
        return None
    project = project or QgsProject.instance()
    outputs = result["outputs"]
    names = layer_names(result)
    group = project.layerTreeRoot().insertGroup(0, group_name or names["group"])
    if add_overlay:
        gpkg = outputs["tiepoints"]
        for layer_name, styler in (("match_vectors", style_vectors), ("tie_points", style_tie_points)):
            layer = QgsVectorLayer(f"{gpkg}|layername={layer_name}", names[layer_name], "ogr")
            if layer.isValid():
                styler(layer)
                project.addMapLayer(layer, False)
                group.addLayer(layer)
    if add_warped:
        raster = QgsRasterLayer(outputs["warped"], names["warped"], "gdal")
        if raster.isValid():
            project.addMapLayer(raster, False)
            group.addLayer(raster)
    return group
