"""Geometry: robust transform fitting, GCP files and GDAL warping."""
