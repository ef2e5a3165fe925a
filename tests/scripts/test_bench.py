import csv
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_bench(data_root: Path, out: Path, engines: str, limit: int, protocols: str = "paper") -> str:
    """scripts/bench.py on the first ``limit`` test pairs; returns the Markdown table."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench.py"), str(data_root / "test"), "--engines",
                           engines, "--limit", str(limit), "--out", str(out), "--protocols", protocols],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return (out / "bench.md").read_text()


def test_bench_runs_engines_in_one_table_with_ratios(data_root, tmp_path):
    out = tmp_path / "results"
    table = run_bench(data_root, out, "sift,area,nope,default (busy)", 2, "paper,georef")
    for row in ("| sift | paper | all | 2 |", "| area | paper | all | 2 |", "| sift | georef | all | 2 |",
                "| area | georef | all | 2 |", "| default (busy) | paper | all | 2 |"):
        assert row in table
    assert "default (busy) | georef" not in table  # one busy row
    assert "nope (paper): skipped" in table  # an unknown/unavailable engine is reported, not fatal
    rows = list(csv.DictReader(open(out / "bench.csv")))
    sift_all = next(r for r in rows if r["engine"] == "sift" and r["dataset"] == "all" and r["protocol"] == "paper")
    assert {"n_claimed", "n_false_accept"} <= set(rows[0])
    assert float(sift_all["peak_mb"]) > 50 and (sift_all["sr_vs_sift"] in ("", "1.0") or float(sift_all["sr_vs_sift"]) == 1.0)
    assert (out / "bench.png").stat().st_size > 1000


def test_peers_run_through_the_harness_or_say_how_to_get_them(data_root, tmp_path):
    """AROSICS lives in .venv-peers (`make peers`); without it the bench reports the step, never crashes."""
    table = run_bench(data_root, tmp_path / "results", "arosics-global", 1)
    if (REPO / ".venv-peers" / "bin" / "python").is_file():
        assert "| arosics-global | paper | all | 1 |" in table
    else:
        assert "arosics-global (paper): skipped (peers environment missing: run `make peers`)" in table


def test_large_scene_bench_reports_time_memory_and_error(data_root, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_large.py"), str(data_root / "test"), "--n", "2",
                           "--tile", "512", "--engine", "classical", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "res")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    res = json.loads((tmp_path / "res" / "large_scene.json").read_text())
    assert res["size_px"] == 1024 and res["peak_mb"] > 50 and res["wall_s"] > 0
    assert res["err_median_px"] < res["err_before_median_px"] / 5  # real pairs: floored by S1's own misalignment
    assert res["verdict"] in ("registered", "uncertain")
    assert f"| 1024 x 1024 | classical (similarity) | {res['verdict']} |" in (tmp_path / "res" / "large_scene.md").read_text()
