"""`make package` builds a zip that installs into a QGIS profile and loads there with its bundled engine."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import json, os, sys
    from unittest.mock import MagicMock
    from qgis.core import QgsApplication
    app = QgsApplication([], False)
    app.initQgis()
    import qgis.utils
    plugins_dir = sys.argv[1]
    sys.path.insert(0, plugins_dir)
    qgis.utils.plugin_paths = [plugins_dir]
    from qgis.PyQt.QtWidgets import QMainWindow
    window = QMainWindow()
    qgis.utils.iface = MagicMock()
    qgis.utils.iface.mainWindow.return_value = window  # QAction needs a real parent widget
    qgis.utils.updateAvailablePlugins()
    assert qgis.utils.loadPlugin("promptmid_qgis"), "loadPlugin failed"
    assert qgis.utils.startPlugin("promptmid_qgis"), "startPlugin failed"
    import promptmid_qgis
    from promptmid_qgis.environment import engine_path, probe
    provider = QgsApplication.processingRegistry().providerById("promptmid")
    info = probe(sys.executable)
    print(json.dumps({"plugin_file": promptmid_qgis.__file__, "engine": str(engine_path()),
                      "algorithms": sorted(a.id() for a in provider.algorithms()) if provider else [],
                      "default_weights": info.get("default_weights"), "default_present": info.get("default_present"), "error": info.get("error")}))
    qgis.utils.unloadPlugin("promptmid_qgis")
    app.exitQgis()
''')


def test_zip_installs_into_a_profile_and_loads(tmp_path):
    built = subprocess.run([sys.executable, str(REPO / "scripts" / "package.py")], capture_output=True, text=True, cwd=REPO)
    assert built.returncode == 0, built.stderr
    zpath = Path(built.stdout.strip().splitlines()[-1])
    names = zipfile.ZipFile(zpath).namelist()
    assert all(n.startswith("promptmid_qgis/") for n in names)
    for needed in ("promptmid_qgis/metadata.txt", "promptmid_qgis/__init__.py", "promptmid_qgis/engine/promptmid/worker.py",
                   "promptmid_qgis/resources/models/promptmid-dense.safetensors", "promptmid_qgis/resources/models/promptmid-lite.safetensors", "promptmid_qgis/resources/icon.svg",
                   "promptmid_qgis/resources/landcover/worldcover.json", "promptmid_qgis/requirements-engine.txt"):
        assert needed in names
    assert not any("__pycache__" in n for n in names)
    plugins = tmp_path / "profiles" / "default" / "python" / "plugins"
    plugins.mkdir(parents=True)
    zipfile.ZipFile(zpath).extractall(plugins)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["QT_QPA_PLATFORM"] = "offscreen"
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(plugins)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    info = json.loads(run.stdout.strip().splitlines()[-1])
    assert info["plugin_file"].startswith(str(plugins))
    assert info["engine"] == str(plugins / "promptmid_qgis" / "engine")
    assert len(info["algorithms"]) == 4
    assert info["default_present"] and info["default_weights"].startswith(str(plugins)), info
