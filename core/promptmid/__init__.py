"""PromptMID engine: optical-SAR co-registration (keypoints, descriptors, matching, GCPs, warping).

The engine never imports QGIS; the plugin in ``promptmid_qgis`` drives it.
"""

__version__ = "0.1.0"
