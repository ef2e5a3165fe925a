import os
import json
import subprocess
import sys

import numpy as np
import pytest
from rasters import textured

from promptmid.cli import main


def test_register_bad_input_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"\x00" * 100)
    code = main(["register", str(bad), str(bad), "-o", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("promptmid: error: broken.tif")


def test_register_unmatchable_exits_3(make_raster, tmp_path, capsys):
    opt = make_raster((textured() * 255).astype(np.uint8))
    noise = make_raster(np.random.default_rng(1).integers(1, 255, (256, 256)).astype(np.uint8))
    assert main(["register", opt, noise, "-o", str(tmp_path / "o"), "-q"]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("Uncertain registration, nothing written" in err[0] or "Could not register" in err[0])
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_register_real_pair_prints_outputs(s1s2_pair, tmp_path, capsys):
    code = main(["register", str(s1s2_pair / "optical.tif"), str(s1s2_pair / "sar.tif"), "-o", str(tmp_path / "o"),
                 "--land-use", "city", "--transform", "poly2", "--accept-uncertain"])  # near its georeference: either verdict
    out = capsys.readouterr()
    assert code == 0 and "tie points consistent" in out.out and "points:" in out.out
    assert "100.0%" in out.err  # progress reached the end
    assert (tmp_path / "o" / "sar_registered.tif").is_file()


def test_evaluate_json_has_the_documented_keys(data_root, tmp_path):
    js = tmp_path / "e.json"
    code = main(["evaluate", str(data_root / "test"), "--limit", "2", "--json", str(js), "--csv", str(tmp_path / "e.csv"), "-q"])
    data = json.loads(js.read_text())
    assert code == 0
    for key in ("n_pairs", "sr", "ncm", "rmse", "reg_err_median_px", "reg_err_p90_px", "sec_per_pair", "engine"):
        assert key in data
    assert data["n_pairs"] == 2 and len(data["pairs"]) == 2
    assert (tmp_path / "e.csv").read_text().count("\n") == 3


def test_console_script_and_unknown_engine():
    exe = [sys.executable, "-m", "promptmid.cli"]
    r = subprocess.run(exe + ["register", "a", "b", "-o", "c", "--engine", "nope"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_missing_or_corrupt_weights_exit_5(s1s2_pair, tmp_path, capsys):
    args = ["register", str(s1s2_pair / "optical.tif"), str(s1s2_pair / "sar.tif"), "-o", str(tmp_path / "o"), "-q"]
    assert main(args + ["--weights", str(tmp_path / "none.safetensors")]) == 5
    assert "model is missing" in capsys.readouterr().err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    (tmp_path / "bad.json").write_text("{not json")
    assert main(args + ["--weights", str(bad)]) == 5
    assert "corrupt" in capsys.readouterr().err
    assert main(args + ["--engine", "promptmid", "--model-dir", str(tmp_path / "empty")]) == 5
    assert "Stable Diffusion 1.5" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_search_verdict_band_and_tiling_flags_reach_the_engine_config():
    from promptmid.cli import _engine_config, build_parser

    args = build_parser().parse_args(["register", "o.tif", "s.tif", "-o", "out", "--tiling", "off", "--max-rotation", "5",
                                      "--scale-range", "1.1", "0.9", "--max-shift", "20", "--accept-uncertain",
                                      "--sar-band", "mean"])
    cfg = _engine_config(args)
    assert cfg.tiling.mode == "off" and cfg.accept_uncertain and cfg.sar_band == "mean"
    assert cfg.search.max_rotation_deg == cfg.search.georef_max_rotation_deg == 5
    assert cfg.search.scale_range == cfg.search.georef_scale_range == (0.9, 1.1)
    assert cfg.search.max_shift_px == cfg.search.georef_max_shift_px == 20
    plain = _engine_config(build_parser().parse_args(["register", "o.tif", "s.tif", "-o", "out"]))
    assert plain.tiling.mode == "auto" and not plain.accept_uncertain and plain.sar_band == "1"
    assert plain.search.max_shift_px is None and plain.search.max_rotation_deg == 12.0


@pytest.mark.parametrize("limit", [20_000, 150_000, 500_000])  # fails in the .points, the GeoPackage, the GeoTIFF
def test_full_disk_exits_4_and_leaves_no_partial_outputs(s1s2_pair, tmp_path, limit):
    """A full disk, made real with RLIMIT_FSIZE (writes past the limit fail with EFBIG, as ENOSPC would):
    one line, exit 4, none of the run's outputs (not even the ones written before), inputs untouched."""
    import hashlib

    out = tmp_path / "out"
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (s1s2_pair / "optical.tif", s1s2_pair / "sar.tif")}
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
            "from promptmid.cli import main; sys.exit(main(sys.argv[1:]))")
    r = subprocess.run([sys.executable, "-c", code, "register", str(s1s2_pair / "optical.tif"), str(s1s2_pair / "sar.tif"),
                        "-o", str(out), "--engine", "default", "--accept-uncertain", "-q"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 4, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("promptmid: error:") and "Traceback" not in r.stderr
    assert list(out.iterdir()) == []
    assert digest == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in digest}


def test_library_warnings_stay_off_the_terminal(s1s2_pair, tmp_path):
    """A truncated GeoTIFF makes GDAL print 'Warning 1: ... TIFFFetchNormalTag' lines; the user sees our one
    line only, the warnings go to the log file."""
    import subprocess
    import sys

    data = (s1s2_pair / "sar.tif").read_bytes()
    bad = tmp_path / "truncated.tif"
    bad.write_bytes(data[:300])  # cut inside the GeoTIFF tags: GDAL warns about each, then fails to read
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.run([sys.executable, "-m", "promptmid.cli", "register", str(s1s2_pair / "optical.tif"), str(bad), "-o",
                           str(tmp_path / "o"), "-q"], capture_output=True, text=True, env=env, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode in (2, 3) and len(lines) == 1 and lines[0].startswith("promptmid: error:"), proc.stderr
    assert "Warning" not in proc.stderr
    log = (tmp_path / "state" / "promptmid" / "promptmid.log").read_text()
    assert "TIFFFetchNormalTag" in log


def test_evaluate_on_the_validation_part_of_a_training_folder(data_root, tmp_path):
    from promptmid.training.data import split_pairs

    js = tmp_path / "v.json"
    code = main(["evaluate", str(data_root / "train"), "--validation-part", "0.2", "--limit", "2", "--engine", "area",
                 "--json", str(js), "-q"])
    held_out = split_pairs(str(data_root / "train"), 0.2)[1]
    assert code == 0 and [p["pair_id"] for p in json.loads(js.read_text())["pairs"]] == sorted(held_out)[:2]
    assert main(["evaluate", str(data_root / "train"), "--validation-part", "0.0", "-q"]) == 2  # nothing held out
