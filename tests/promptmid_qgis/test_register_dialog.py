from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtWidgets import QDialogButtonBox

from promptmid_qgis.dialogs.register_dialog import FROM_LAND_COVER, RegisterDialog, points_source
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
    assert job["points_source"] == points_source(sar)


def test_validation_refuses_bad_choices_inline(qgis_app, project_layers, tmp_path):
    optical, sar = project_layers
    d = RegisterDialog(PluginSettings(output_dir=""))
    d.sar.setLayer(optical)
    assert not d.validate() and not _ok(d).isEnabled()
    assert "two different layers" in d.message.text() and "output folder" in d.message.text()
    d.sar.setLayer(sar)
    d.output.setFilePath(str(tmp_path))
    d.land_use.setCurrentIndex(d.land_use.findData(FROM_LAND_COVER))
    d.land_cover.setLayer(None)
    assert not d.validate() and "land-cover raster" in d.message.text()
    assert d.land_cover.isEnabled()
    d.land_cover.setLayer(optical)
    assert d.validate()
    assert d.job()["land_use"] is None and d.job()["land_cover"] == optical.source()


def test_non_file_layers_are_refused(qgis_app, project_layers, tmp_path):
    mem = QgsRasterLayer("type=xyz&url=https://tile.example/{z}/{x}/{y}.png", "tiles", "wms")
    QgsProject.instance().addMapLayer(mem)
    d = RegisterDialog(PluginSettings(output_dir=str(tmp_path)))
    d.sar.setLayer(mem)
    assert not d.validate() and "not a local raster file" in d.message.text()


def test_points_source_follows_the_qgis_version(qgis_app, project_layers):
    _, sar = project_layers
    assert points_source(sar, 32216) == "pixel"
    assert points_source(sar, 32600) == "layer"
    assert points_source(None, 32800) == "pixel"
