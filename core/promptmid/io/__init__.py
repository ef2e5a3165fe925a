"""Raster input/output through GDAL: reading onto a common work grid, normalisation, atomic writes."""
