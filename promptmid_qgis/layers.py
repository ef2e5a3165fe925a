"""Adding the engine's outputs to the project: warped SAR, styled tie points and match vectors in a group."""

from __future__ import annotations

import os

from qgis.core import (QgsClassificationQuantile, QgsGraduatedSymbolRenderer, QgsLayerTreeGroup, QgsProject,
                       QgsRasterLayer, QgsStyle, QgsSymbol, QgsVectorLayer)


def style_tie_points(layer: QgsVectorLayer, field: str = "residual_px", classes: int = 5) -> None:
    """Graduated colours by residual (green = small, red = large), quantile classes."""
    renderer = QgsGraduatedSymbolRenderer(field)
    symbol = QgsSymbol.defaultSymbol(layer.geometryType())
    symbol.setSize(2.6)
    renderer.setSourceSymbol(symbol)
    renderer.setClassificationMethod(QgsClassificationQuantile())
    ramp = QgsStyle.defaultStyle().colorRamp("RdYlGn")
    if ramp is not None:
        ramp.invert()
        renderer.setSourceColorRamp(ramp)
    renderer.updateClasses(layer, classes)
    layer.setRenderer(renderer)


def style_vectors(layer: QgsVectorLayer) -> None:
    symbol = QgsSymbol.defaultSymbol(layer.geometryType())
    symbol.setColor(symbol.color().fromRgb(255, 170, 0))
    symbol.setWidth(0.4)
    layer.renderer().setSymbol(symbol)


def add_registration_outputs(result: dict, project: QgsProject | None = None, group_name: str = "") -> QgsLayerTreeGroup:
    """Add warped SAR + tie points + match vectors under one group at the top of the layer tree.

    Returns the group. Layers that fail to load are skipped (their paths are in the report).
    """
    project = project or QgsProject.instance()
    outputs = result["outputs"]
    name = group_name or f"PromptMID: {os.path.splitext(os.path.basename(outputs['warped']))[0]}"
    group = project.layerTreeRoot().insertGroup(0, name)
    gpkg = outputs["tiepoints"]
    for layer_name, styler in (("match_vectors", style_vectors), ("tie_points", style_tie_points)):
        layer = QgsVectorLayer(f"{gpkg}|layername={layer_name}", layer_name, "ogr")
        if layer.isValid():
            styler(layer)
            project.addMapLayer(layer, False)
            group.addLayer(layer)
    raster = QgsRasterLayer(outputs["warped"], os.path.basename(outputs["warped"]), "gdal")
    if raster.isValid():
        project.addMapLayer(raster, False)
        group.addLayer(raster)
    return group
