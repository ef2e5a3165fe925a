import json
import os

import pytest
from qgis.core import QgsApplication, QgsRasterLayer, QgsVectorLayer

from promptmid_qgis.processing.provider import PromptMIDProvider
from promptmid_qgis.settings import PluginSettings


@pytest.fixture
def provider(qgis_processing, engine_python):
    PluginSettings(python=engine_python).save()
    p = PromptMIDProvider()
    QgsApplication.processingRegistry().addProvider(p)
    yield p
    QgsApplication.processingRegistry().removeProvider(p)


def test_provider_lists_the_four_algorithms(provider):
    ids = sorted(a.id() for a in provider.algorithms())
    assert ids == ["promptmid:evaluate_matching", "promptmid:finetune_controlnet", "promptmid:register_raster_pair", "promptmid:train_descriptor"]
    for alg in provider.algorithms():
        assert alg.shortHelpString() and alg.displayName()


def test_register_in_a_batch_of_two(provider, pair_files, s1s2_pair, tmp_path, qgis_new_project):
    import processing
    from promptmid.demo import misregister
    from qgis.core import QgsProject

    second = str(tmp_path / "inputs" / "sar_other.tif")
    misregister(str(s1s2_pair / "sar.tif"), second, (-8.0, 15.0), -0.5)
    outs = []
    for i, sar in enumerate((pair_files[1], second)):  # what the batch interface does: one run per row
        run = processing.runAndLoadResults if i == 0 else processing.run  # the first as the dialog runs it: layers load
        r = run("promptmid:register_raster_pair", {"OPTICAL": pair_files[0], "SAR": sar, "LAND_USE": 1, "ENGINE": 0, "KEEP_UNCERTAIN": True,
                                                   "TRANSFORM": 0, "OUTPUT_FOLDER": str(tmp_path / f"out{i}")})
        outs.append(r)
        assert QgsRasterLayer(r["WARPED"], "w").crs().authid() == "EPSG:3395"
        report = json.load(open(r["REPORT"], encoding="utf-8"))
        assert QgsVectorLayer(r["TIE_POINTS"], "t", "ogr").featureCount() == r["N_GCPS"] == report["n_gcps"]
        assert r["N_INLIERS"] == report["evidence"]["n_inliers"]  # the count the summary states
        assert os.path.isfile(r["GCP_FILE"]) and r["RMSE_PX"] > 0
    assert outs[0]["WARPED"] != outs[1]["WARPED"]
    loaded = {l.name(): l for l in QgsProject.instance().mapLayers().values()}
    sfx = " (uncertain)" if outs[0]["VERDICT"] == "uncertain" else ""  # kept as asked, marked in its name
    assert {f"sar_shifted_registered{sfx}", f"sar_shifted tie points{sfx}", "sar_shifted match vectors"} <= set(loaded)
    assert loaded[f"sar_shifted_registered{sfx}"].source() == outs[0]["WARPED"]
    assert type(loaded[f"sar_shifted tie points{sfx}"].renderer()).__name__ == "QgsGraduatedSymbolRenderer"  # styled on loading
    assert loaded["sar_shifted match vectors"].renderer().symbol().color().name() == "#ffaa00"
    # in their own group, as the dialog adds them (Processing alone would use the current group)
    group = QgsProject.instance().layerTreeRoot().findGroup(f"PromptMID: sar_shifted_registered{sfx}")
    assert group is not None and {n.name() for n in group.findLayers()} == {
        f"sar_shifted_registered{sfx}", f"sar_shifted tie points{sfx}", "sar_shifted match vectors"}
    assert group.findLayers()[-1].name() == f"sar_shifted_registered{sfx}"  # the raster under the overlay
    root = QgsProject.instance().layerTreeRoot()
    ids = root.findLayerIds()
    assert len(ids) == len(set(ids)) and all(root.findLayer(n.layerId()).parent() is group for n in group.findLayers())


def test_register_refuses_the_same_raster_twice(provider, pair_files, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="two different rasters"):
        processing.run("promptmid:register_raster_pair", {"OPTICAL": pair_files[0], "SAR": pair_files[0], "OUTPUT_FOLDER": str(tmp_path)})


def test_register_dialog_defaults_and_labels(provider, project_layers):
    from qgis.core import QgsProcessingParameterEnum

    optical, sar = project_layers
    alg = QgsApplication.processingRegistry().createAlgorithmById("promptmid:register_raster_pair")  # as the dialog does
    assert alg.parameterDefinition("OPTICAL").defaultValue() == optical.id()
    assert alg.parameterDefinition("SAR").defaultValue() == sar.id()
    enums = {p.name(): p for p in alg.parameterDefinitions() if isinstance(p, QgsProcessingParameterEnum)}
    assert enums["ENGINE"].options()[0] == "Default (shipped CPU model)" and "Affine (polynomial 1)" in enums["TRANSFORM"].options()
    land_use = enums["LAND_USE"]
    assert land_use.options()[land_use.defaultValue()] == "Others (mixed / unknown)"  # the dialog's default too
    assert "default" not in enums["ENGINE"].options() and "others" not in land_use.options()


class _Feedback:
    """Records what the Processing log would show."""

    def __new__(cls):
        from qgis.core import QgsProcessingFeedback

        class Recorder(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self.lines = []

            def pushInfo(self, info):  # noqa: N802
                self.lines.append(info)

            def setProgressText(self, text):  # noqa: N802
                self.lines.append(text)

            def pushWarning(self, warning):  # noqa: N802
                self.lines.append("WARNING " + warning)

        return Recorder()


@pytest.fixture
def fake_engine(monkeypatch, fake_run):
    """Replaces the worker run by a recorded job and a fake result (real output files)."""
    from promptmid_qgis.processing.register_algorithm import RegisterRasterPair

    jobs = []

    def run_engine(self, job, feedback):
        jobs.append(job)
        from pathlib import Path

        for msg in ("matching", "summary line"):
            feedback.setProgressText(msg)
        self.last_message = "summary line"
        return fake_run(Path(job["output_dir"]), stem="sar_shifted", **getattr(run_engine, "extra", {}))

    monkeypatch.setattr(RegisterRasterPair, "run_engine", run_engine)
    return run_engine, jobs


def test_register_job_band_uncertain_fresh_folder_and_one_summary(provider, project_layers, fake_engine, tmp_path):
    import processing

    run_engine, jobs = fake_engine
    optical, sar = project_layers
    params = {"OPTICAL": optical.id(), "SAR": sar.id(), "OUTPUT_FOLDER": str(tmp_path / "o"), "KEEP_UNCERTAIN": True, "SAR_MEAN": True}
    fb = _Feedback()
    r1 = processing.run("promptmid:register_raster_pair", params, feedback=fb)
    assert jobs[-1]["sar_band"] == "mean" and jobs[-1]["accept_uncertain"] is True and jobs[-1]["points_source"] == "auto"
    assert fb.lines.count("summary line") == 1  # logged once, not twice
    run_engine.extra = {"verdict": "uncertain", "verdict_reason": "weak evidence", "warnings": ["Polynomial 2 extrapolates"]}
    fb = _Feedback()
    r2 = processing.run("promptmid:register_raster_pair", {**params, "SAR_MEAN": False, "SAR_BAND": 1}, feedback=fb)
    assert jobs[-1]["sar_band"] == "1"
    assert r2["OUTPUT_FOLDER"] == str(tmp_path / "o" / "sar_shifted_run2") != r1["OUTPUT_FOLDER"]  # no overwrite
    assert r2["VERDICT"] == "uncertain" and "WARNING Uncertain registration: weak evidence. Outputs kept as asked." in fb.lines
    assert "WARNING Polynomial 2 extrapolates" in fb.lines


@pytest.fixture
def tiny_pairs(data_root, tmp_path):
    d = tmp_path / "pairs"
    d.mkdir()
    for pid in ("3mos_SEN_rural_00", "3mos_SEN_plain_01", "3mos_GF3_city_00"):
        (d / pid).symlink_to(data_root / "train" / pid)
    return d


def test_train_and_evaluate_algorithms(provider, tiny_pairs, tmp_path):
    import processing

    out = str(tmp_path / "w.safetensors")
    r = processing.run("promptmid:train_descriptor", {"PAIRS": str(tiny_pairs), "PROFILE": 0, "STEPS": 3, "LR": 1e-3, "SEED": 0, "OUTPUT": out})
    assert r["STEPS_DONE"] == 3 and os.path.isfile(out) and os.path.isfile(out.replace(".safetensors", ".json"))
    js = str(tmp_path / "e.json")
    r = processing.run("promptmid:evaluate_matching", {"PAIRS": str(tiny_pairs), "ENGINE": 2, "SEED": 0, "LIMIT": 2, "OUTPUT": js})
    data = json.load(open(js))
    assert data["n_pairs"] == 2 and r["SR"] == data["sr"] and "| classical |" in r["TABLE"]


def test_finetune_controlnet_algorithm(provider, tiny_pairs, tmp_path):
    import processing
    from tiny_models import make_tiny_model_dir

    md = make_tiny_model_dir(str(tmp_path / "md"), with_controlnet=False)
    r = processing.run("promptmid:finetune_controlnet", {"PAIRS": str(tiny_pairs), "MODEL_DIR": md, "STEPS": 2, "RESOLUTION": 64,
                                                          "OUTPUT": str(tmp_path / "cn")})
    assert r["STEPS_DONE"] == 2 and os.path.isfile(os.path.join(r["OUTPUT"], "config.json"))
