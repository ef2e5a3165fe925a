import os

from qgis.core import Qgis, QgsCoordinateReferenceSystem, QgsGraduatedSymbolRenderer, QgsProject

from promptmid_qgis.plugin import PromptMIDPlugin


def _job(pair_files, out, engine="default"):
    return {"action": "register", "optical": pair_files[0], "sar": pair_files[1], "output_dir": str(out),
            "engine": engine, "transform": "affine", "land_use": "city", "points_source": "pixel"}


def test_task_registers_in_the_worker_and_adds_layers(qgis_iface, qgis_new_project, qtbot, pair_files, tmp_path, engine_python):
    plugin = PromptMIDPlugin(qgis_iface)
    plugin.initGui()
    try:
        task = plugin.start(_job(pair_files, tmp_path / "out"), python=engine_python)
        assert task is not None and plugin.busy
        assert plugin.start(_job(pair_files, tmp_path / "out2"), python=engine_python) is None  # refused while busy
        qtbot.waitUntil(lambda: not plugin.busy, timeout=180_000)
        assert task.outcome.ok, task.outcome.error
        root = QgsProject.instance().layerTreeRoot()
        group = root.findGroup("PromptMID: sar_shifted_registered")
        assert group is not None
        names = sorted(l.name() for l in group.findLayers())
        assert names == ["match_vectors", "sar_shifted_registered.tif", "tie_points"]
        crs = QgsCoordinateReferenceSystem("EPSG:3395")
        for node in group.findLayers():
            assert node.layer().isValid() and node.layer().crs() == crs
        tie = next(n.layer() for n in group.findLayers() if n.name() == "tie_points")
        assert isinstance(tie.renderer(), QgsGraduatedSymbolRenderer) and len(tie.renderer().ranges()) >= 3
        assert tie.featureCount() == task.outcome.result["n_gcps"] >= 50
        success = qgis_iface.messageBar().get_messages(Qgis.Success)
        assert success and "tie points" in success[-1] and ".points" in success[-1]
    finally:
        plugin.unload()


def test_cancel_stops_a_run_within_seconds_and_keeps_no_outputs(qgis_iface, qgis_new_project, qtbot, pair_files, tmp_path, engine_python):
    plugin = PromptMIDPlugin(qgis_iface)
    out = tmp_path / "out"
    task = plugin.start(_job(pair_files, out, engine="classical"), python=engine_python)
    qtbot.waitUntil(lambda: task.progress() > 0, timeout=60_000)
    task.cancel()
    qtbot.waitUntil(lambda: not plugin.busy, timeout=5_000)
    assert task.outcome.cancelled
    assert not out.exists() or not os.listdir(out)
    assert any("cancelled" in m for m in qgis_iface.messageBar().get_messages(Qgis.Info))


def test_engine_errors_reach_the_message_bar_not_a_traceback(qgis_iface, qgis_new_project, qtbot, tmp_path, engine_python):
    plugin = PromptMIDPlugin(qgis_iface)
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"not a raster")
    task = plugin.start({"action": "register", "optical": str(bad), "sar": str(bad) + "x", "output_dir": str(tmp_path / "o"),
                         "engine": "classical"}, python=engine_python)
    qtbot.waitUntil(lambda: not plugin.busy, timeout=60_000)
    assert task.outcome.kind == "InputError"
    msgs = qgis_iface.messageBar().get_messages(Qgis.Critical)
    assert msgs and "broken.tif" in msgs[-1] and "Traceback" not in msgs[-1]
