import json
import subprocess
import sys

from promptmid.worker import run_job


def _lines(capsys):
    return [json.loads(l) for l in capsys.readouterr().out.splitlines()]


def test_register_job_streams_progress_then_one_result(s1s2_pair, tmp_path, capsys):
    code = run_job({"action": "register", "optical": str(s1s2_pair / "optical.tif"), "sar": str(s1s2_pair / "sar.tif"),
                    "output_dir": str(tmp_path), "engine": "default", "accept_uncertain": True})
    msgs = _lines(capsys)
    assert code == 0
    progress = [m["progress"] for m in msgs if "progress" in m]
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) > 5
    assert "result" in msgs[-1] and msgs[-1]["result"]["n_inliers"] >= 10
    assert sum("result" in m or "error" in m for m in msgs) == 1


def test_errors_are_one_line_with_their_kind(tmp_path, capsys):
    assert run_job({"action": "register", "optical": str(tmp_path / "x.tif"), "sar": str(tmp_path / "y.tif"), "output_dir": str(tmp_path)}) == 2
    last = _lines(capsys)[-1]
    assert last["kind"] == "InputError" and "x.tif: file not found" in last["error"]
    assert run_job({"action": "register"}) == 2
    assert _lines(capsys)[-1]["kind"] == "JobError"


def test_check_job_in_a_real_subprocess():
    proc = subprocess.run([sys.executable, "-m", "promptmid.worker"], input=json.dumps({"action": "check"}), capture_output=True, text=True, timeout=120)
    info = json.loads(proc.stdout.splitlines()[-1])["result"]
    assert proc.returncode == 0 and info["packages"]["torch"].startswith("2.") and "cuda" in info
