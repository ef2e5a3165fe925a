import numpy as np
from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtWidgets import QDialogButtonBox
from rasters import write_raster

from promptmid_qgis.dialogs.register_dialog import FROM_LAND_COVER, RegisterDialog, band_choices, points_source
from promptmid_qgis.engine_check import READY, EngineCheck
from promptmid_qgis.settings import PluginSettings


def _ok(dialog):
    return dialog.buttons.button(QDialogButtonBox.Ok)


def test_dialog_populates_and_builds_the_job(qgis_app, project_layers, tmp_path):
    optical, sar = project_layers
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path / "out"), engine="classical", transform="poly2"))
    assert d.optical.currentLayer().id() == optical.id()  # 3-band raster picked as optical
    assert d.sar.currentLayer().id() == sar.id()  # 1-band raster picked as SAR
    assert d.validate() and _ok(d).isEnabled() and d.message.text() == ""
    d.land_use.setCurrentIndex(d.land_use.findData("water"))
    job = d.job()
    assert job["optical"] == optical.source() and job["sar"] == sar.source()
    assert (job["engine"], job["transform"], job["land_use"], job["action"]) == ("classical", "poly2", "water", "register")
    assert job["points_source"] == "auto" and job["sar_band"] == "1" and job["accept_uncertain"] is False
    assert job["output_dir"] == str(tmp_path / "out")


def test_validation_refuses_bad_choices_inline(qgis_app, project_layers, tmp_path):
    optical, sar = project_layers
    d = RegisterDialog(PluginSettings(output_dir=""))
    d.sar.setLayer(optical)
    assert not d.validate() and not _ok(d).isEnabled()
    assert "two different layers" in d.message.text() and "output folder" in d.message.text()
    d.sar.setLayer(sar)
    d.output.setFilePath(str(tmp_path))
    d.land_use.setCurrentIndex(d.land_use.findData(FROM_LAND_COVER))
    assert d.land_cover.currentLayer() is None  # never guessed (the optical RGB used to be picked)
    assert not d.validate() and "land-cover raster" in d.message.text()
    assert d.land_cover.isEnabled()
    d.land_cover.setLayer(optical)  # 3 bands: not a land-cover map
    assert not d.validate() and "does not look like a land-cover map (3 bands)" in d.message.text()
    lc_path = write_raster(tmp_path / "lc.tif", np.full((64, 64), 50, np.uint8), (0, 10, 0, 640, 0, -10), epsg=32632)
    lc = QgsRasterLayer(lc_path, "worldcover")
    QgsProject.instance().addMapLayer(lc)
    d.land_cover.setLayer(lc)
    assert d.validate()
    assert d.job()["land_use"] is None and d.job()["land_cover"] == lc_path


def test_cleared_messages_give_their_space_back(qgis_app, project_layers, tmp_path):
    d = RegisterDialog(PluginSettings(output_dir=""))
    d.show()
    assert not d.validate() and d.message.isVisible()
    tall = d.height()
    d.output.setFilePath(str(tmp_path))
    assert d.validate() and not d.message.isVisible() and d.height() < tall
    d.close()


def test_non_file_layers_are_refused(qgis_app, project_layers, tmp_path):
    mem = QgsRasterLayer("type=xyz&url=https://tile.example/{z}/{x}/{y}.png", "tiles", "wms")
    QgsProject.instance().addMapLayer(mem)
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path)))
    d.sar.setLayer(mem)
    assert not d.validate() and "not a local raster file" in d.message.text()


def test_points_source_follows_the_georeferencer_of_the_qgis_version():
    assert points_source(32216) == "auto"  # 3.22.16: layer coordinates with a geotransform, pixels without
    assert points_source(32800) == "auto"
    assert points_source(32203) == "pixel"  # 3.20 - 3.22.3 converted pixels on loading


def test_sar_band_choice_lists_bands_and_the_mean(qgis_app, qgis_new_project, tmp_path):
    arr = np.random.default_rng(0).integers(1, 255, (2, 64, 64)).astype(np.uint8)
    path = write_raster(tmp_path / "s1_vv_vh.tif", arr, (0, 10, 0, 640, 0, -10), epsg=32632)
    from osgeo import gdal

    ds = gdal.Open(path, gdal.GA_Update)
    ds.GetRasterBand(1).SetDescription("VV")
    ds.GetRasterBand(2).SetDescription("VH")
    ds = None
    dual = QgsRasterLayer(path, "s1")
    assert [v for v, _ in band_choices(dual)] == ["1", "2", "mean"]
    assert "VH" in band_choices(dual)[1][1] and band_choices(dual)[2][1] == "Mean intensity of all bands"
    optical = QgsRasterLayer(write_raster(tmp_path / "rgb.tif", np.ones((3, 64, 64), np.uint8), (0, 10, 0, 640, 0, -10), epsg=32632), "rgb")
    QgsProject.instance().addMapLayers([optical, dual])
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path)))
    assert d.sar.currentLayer().id() == dual.id() and d.sar_band.count() == 3
    d.sar_band.setCurrentIndex(d.sar_band.findData("mean"))
    d.keep_uncertain.setChecked(True)
    job = d.job()
    assert job["sar_band"] == "mean" and job["accept_uncertain"] is True


def test_land_use_is_remembered(qgis_app, project_layers, tmp_path):
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path)))
    assert d.land_use.currentData() == "others"  # the same default as Processing
    d.land_use.setCurrentIndex(d.land_use.findData("forest"))
    d.remember()
    assert RegisterDialog(PluginSettings.load()).land_use.currentData() == "forest"


def test_a_reopened_dialog_starts_from_the_last_pair_while_its_layers_exist(qgis_app, project_layers, tmp_path):
    optical, sar = project_layers
    other = QgsRasterLayer(optical.source(), "optical")  # a second layer of the same name
    QgsProject.instance().addMapLayer(other)
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path)))
    assert d.optical.showCrs() and d.sar.showCrs()  # same-name layers are told apart by their CRS
    d.optical.setLayer(other)
    d.sar.setLayer(sar)
    d.remember()
    again = RegisterDialog(PluginSettings.load())
    assert again.optical.currentLayer().id() == other.id() and again.sar.currentLayer().id() == sar.id()
    QgsProject.instance().removeMapLayer(other.id())  # gone: back to guessing from the project
    assert RegisterDialog(PluginSettings.load()).optical.currentLayer().id() == optical.id()


def test_full_engine_without_model_folder_is_refused_before_the_run(qgis_app, project_layers, tmp_path, monkeypatch):
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path), model_dir=""))
    d.engine.setCurrentIndex(d.engine.findData("promptmid"))
    assert not d.validate() and "needs its model folder" in d.message.text() and "Settings…" in d.message.text()
    assert d.settings_button.isVisible() or not d.isVisible()
    # the button opens the settings; a model folder set there clears the problem
    model_dir = tmp_path / "models"
    model_dir.mkdir()

    def fake_exec(self):
        PluginSettings(model_dir=str(model_dir), output_dir=str(tmp_path)).save()
        return 1

    monkeypatch.setattr("promptmid_qgis.dialogs.settings_dialog.SettingsDialog.exec_", fake_exec)
    d.open_settings()
    assert d.settings.model_dir == str(model_dir) and d.validate()


def test_missing_model_pieces_from_the_engine_check(qgis_app, project_layers, tmp_path):
    engine = EngineCheck()
    engine.state, engine.python = READY, "/usr/bin/python3"
    engine.info = {"models": [{"key": "dinov2", "path": str(tmp_path / "dinov2"), "present": False, "required": True}]}
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path), model_dir=str(tmp_path)), engine=engine)
    d.engine.setCurrentIndex(d.engine.findData("promptmid"))
    assert not d.validate() and "lacks dinov2" in d.message.text()
    assert d.engine_state.text().startswith("Engine: ready")


def test_a_rerun_into_the_same_folder_goes_to_a_fresh_sub_folder(qgis_app, project_layers, tmp_path):
    _, sar = project_layers
    (tmp_path / "sar_shifted_registered.tif").write_bytes(b"")  # a previous run's output
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path)))
    assert d.validate() and "run 2" in d.note.text()
    assert d.job()["output_dir"] == str(tmp_path / "sar_shifted_run2")


def test_the_default_transform_comes_first_and_choices_explain_themselves(qgis_app, project_layers, tmp_path):
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path / "out")))
    items = [d.transform.itemData(i) for i in range(d.transform.count())]
    assert items[0] == PluginSettings().transform == d.transform.currentData() == "similarity"
    assert sorted(items) == sorted(["similarity", "affine", "poly2", "tps"])
    assert "Similarity" in d.transform.toolTip() and "Others" in d.land_use.toolTip()
