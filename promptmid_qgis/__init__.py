"""PromptMID for QGIS: co-register SAR rasters onto optical rasters (QGIS plugin entry point)."""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    from .plugin import PromptMIDPlugin

    return PromptMIDPlugin(iface)
