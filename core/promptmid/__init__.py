"""PromptMID engine: optical-SAR co-registration (keypoints, descriptors, matching, GCPs, warping).

The engine never imports QGIS; the plugin in ``promptmid_qgis`` drives it.
"""

import os as _os

# OpenMP threads that wait for work must sleep, not spin: spinning pools on a busy 2-core machine made a
# 0.4 s stage take 13 s. Must be set before torch / OpenCV load their OpenMP runtime; a user's value wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
