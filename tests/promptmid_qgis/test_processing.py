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


def test_register_in_a_batch_of_two(provider, pair_files, s1s2_pair, tmp_path):
    import processing
    from promptmid.demo import misregister

    second = str(tmp_path / "inputs" / "sar_other.tif")
    misregister(str(s1s2_pair / "sar.tif"), second, (-8.0, 15.0), -0.5)
    outs = []
    for i, sar in enumerate((pair_files[1], second)):  # what the batch interface does: one run per row
        r = processing.run("promptmid:register_raster_pair", {"OPTICAL": pair_files[0], "SAR": sar, "LAND_USE": 1, "ENGINE": 2,
                                                              "TRANSFORM": 0, "OUTPUT_FOLDER": str(tmp_path / f"out{i}")})
        outs.append(r)
        assert QgsRasterLayer(r["WARPED"], "w").crs().authid() == "EPSG:3395"
        assert QgsVectorLayer(r["TIE_POINTS"], "t", "ogr").featureCount() == r["N_INLIERS"] or r["N_INLIERS"] > 400
        assert os.path.isfile(r["GCP_FILE"]) and r["RMSE_PX"] > 0
    assert outs[0]["WARPED"] != outs[1]["WARPED"]


def test_register_refuses_the_same_raster_twice(provider, pair_files, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    with pytest.raises(QgsProcessingException, match="two different rasters"):
        processing.run("promptmid:register_raster_pair", {"OPTICAL": pair_files[0], "SAR": pair_files[0], "OUTPUT_FOLDER": str(tmp_path)})


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
