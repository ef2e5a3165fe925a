"""Job validation in the worker: a malformed job is a JobError; a KeyError inside the engine is a bug."""

import json

import pytest

import promptmid.worker as worker
from promptmid.config import EngineConfig


def _last(capsys):
    return json.loads(capsys.readouterr().out.splitlines()[-1])


@pytest.mark.parametrize("job, expected", [
    ({"action": "register", "sar": "s.tif"}, "Job is missing optical, output_dir for action 'register'."),
    ({"action": "fly"}, "Unknown action 'fly'"),
    ([1, 2], "Job must be a JSON object."),
])
def test_malformed_jobs_are_job_errors(job, expected, capsys):
    assert worker.run_job(job) == 2
    last = _last(capsys)
    assert last["kind"] == "JobError" and last["error"].startswith(expected)


def test_a_key_error_inside_the_engine_is_an_internal_error(monkeypatch, capsys):
    def broken(job, progress):
        return {}["n_inliers"]  # a bug in the engine, not in the job

    monkeypatch.setitem(worker.ACTIONS, "check", broken)
    assert worker.run_job({"action": "check"}) == 1
    last = _last(capsys)
    assert last["kind"] == "InternalError" and "KeyError" in last["error"] and "Job is missing" not in last["error"]
    assert "Traceback" in last["traceback"]


def test_sar_band_and_accept_uncertain_reach_the_engine_config():
    cfg = worker._engine_config({"engine": "classical", "sar_band": "mean", "accept_uncertain": True})
    known = set(EngineConfig.__dataclass_fields__)
    if "sar_band" in known:
        assert cfg.sar_band == "mean"
    if "accept_uncertain" in known:
        assert cfg.accept_uncertain is True
    assert worker._engine_config({}).engine == "default"
