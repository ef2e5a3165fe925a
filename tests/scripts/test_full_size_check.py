"""scripts/full_size_check.py at the tests' tiny sizes: the plumbing of `make full-size-check` (write a
model directory, crop a real pair, run the CLI, measure, clean up) without its 6.6 GB and minutes."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_full_size_check_runs_the_cli_and_cleans_up(data_root, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "full_size_check.py"), "--spec", "tiny", "--size", "256",
                           "--data", str(data_root), "--work", str(work), "--out", str(out), "--threads", "1",
                           "--no-branches"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "full_size_check.json").read_text())
    assert result["ok"] and result["run"]["exit_code"] in (0, 3)
    assert "--engine" in result["run"]["command"] and "promptmid" in result["run"]["command"]
    assert result["run"]["peak_rss_mib"] > 0 and result["run"]["timeline"]
    assert "| wall time |" in proc.stdout
    assert not work.exists()  # the scratch folder (models included) is removed without --keep
