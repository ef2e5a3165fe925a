"""Worker-process entry point: ``python -m promptmid.worker`` reads one JSON job on stdin and streams JSON
lines on stdout, so a host (the QGIS plugin) can run the engine out of process: a crash in torch/CUDA
kills the worker, not QGIS, and cancel is a kill.

Job: {"action": "register" | "evaluate" | "train_descriptor" | "train_controlnet" | "check", ...arguments}
Lines: {"progress": 0.42, "message": "..."}  then exactly one of
       {"result": {...}}  or  {"error": "one-line message", "kind": "InputError"}.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from dataclasses import asdict, fields, replace
from typing import Any, Callable

from .config import EngineConfig, OutputConfig
from .errors import PromptMIDError
from .progress import Progress


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _engine_config(job: dict) -> EngineConfig:
    cfg = EngineConfig(engine=job.get("engine", "default"), land_use=job.get("land_use"), model_dir=job.get("model_dir"),
                       weights=job.get("weights"), device=job.get("device", "auto"))
    if job.get("land_cover"):
        cfg.land_cover, cfg.land_cover_legend = job["land_cover"], job.get("land_cover_legend", "worldcover")
    if job.get("max_side"):
        cfg.max_side = int(job["max_side"])
    # Options an older engine may lack: passed only when EngineConfig has them.
    extra = {"sar_band": str(job.get("sar_band") or "1"), "accept_uncertain": bool(job.get("accept_uncertain", False))}
    known = {f.name for f in fields(EngineConfig)}
    return replace(cfg, **{k: v for k, v in extra.items() if k in known})


def _register(job: dict, progress: Progress) -> dict:
    from .pipeline import register

    out_cfg = OutputConfig(transform=job.get("transform", OutputConfig.transform), qgis_points_source=job.get("points_source", "auto"),
                           output_grid=job.get("output_grid", "optical"))
    r = register(job["optical"], job["sar"], job["output_dir"], _engine_config(job), out_cfg, progress)
    return {**asdict(r), "summary": r.summary(), "tie_points_text": r.tie_points_text()}


def _evaluate(job: dict, progress: Progress) -> dict:
    from .descriptors.registry import get_describer
    from .evaluation.protocol import ProtocolConfig, evaluate_folder, summary_json
    from .evaluation.report import markdown_table

    cfg = _engine_config(job)
    describer = get_describer(cfg.engine, model_dir=cfg.model_dir, weights=cfg.weights, device=cfg.device)
    s = evaluate_folder(job["pairs_dir"], describer, cfg, ProtocolConfig(seed=int(job.get("seed", 0))), job.get("limit"), progress)
    return {**summary_json(s), "markdown": markdown_table(list(s.values()))}


def _device(job: dict) -> str:
    from .descriptors.registry import resolve_device

    return resolve_device(job.get("device"))


def _train_descriptor(job: dict, progress: Progress) -> dict:
    from .training.cli_train import stage2_network
    from .training.data import AugmentConfig
    from .training.stage2 import Stage2Config, train_stage2

    from .training.stage2 import seed_everything

    seed_everything(int(job.get("seed", 0)))  # before the network is built, as the CLI does
    net = stage2_network(job.get("profile", "lite"), job.get("model_dir"), _device(job))
    cfg = Stage2Config(pairs_dir=job["pairs_dir"], out_path=job["out"], steps=int(job.get("steps", 3500)),
                       lr=float(job.get("lr", 3e-3)), seed=int(job.get("seed", 0)), device=_device(job),
                       augment=AugmentConfig(crop=int(job.get("crop", 192))))
    state = train_stage2(net, cfg, EngineConfig(), progress)
    return {"steps": state.step, "seconds": state.seconds, "validation": state.validation, "weights": job["out"]}


def _train_controlnet(job: dict, progress: Progress) -> dict:
    from .training.stage1 import Stage1Config, stage1_components, train_stage1

    out, comps = stage1_components(job.get("model_dir"), job.get("out"))
    cfg = Stage1Config(pairs_dir=job["pairs_dir"], out_dir=out, steps=int(job.get("steps", 1000)),
                       resolution=int(job.get("resolution", 512)), device=_device(job))
    state = train_stage1(comps, cfg, progress=progress)
    return {"steps": state.step, "seconds": state.seconds, "controlnet": out}


def _check(job: dict, progress: Progress) -> dict:
    """What the plugin's dependency check and "check models" button show."""
    import importlib

    info: dict[str, Any] = {"python": sys.executable, "packages": {}}
    for mod in ("numpy", "torch", "cv2", "diffusers", "transformers", "phasecongruency", "osgeo.gdal"):
        try:
            m = importlib.import_module(mod)
            info["packages"][mod] = getattr(m, "__version__", "ok")
        except Exception as exc:  # report, don't fail: the point is to show what is broken
            info["packages"][mod] = f"MISSING ({type(exc).__name__}: {exc})"
    try:
        import torch

        info["cuda"] = bool(torch.cuda.is_available())
        info["cuda_device"] = torch.cuda.get_device_name(0) if info["cuda"] else ""
    except Exception:
        info["cuda"] = False
    from .descriptors.registry import shipped_checkpoint

    info["default_weights"] = shipped_checkpoint()
    info["default_present"] = os.path.isfile(info["default_weights"])
    if job.get("model_dir"):
        from .models.model_dir import check_model_dir

        info["models"] = [{"key": s.component.key, "path": s.path, "present": s.present, "required": s.component.required,
                           "problem": s.problem, "source": s.component.source} for s in check_model_dir(job["model_dir"])]
    return info


ACTIONS: dict[str, Callable[[dict, Progress], dict]] = {
    "register": _register, "evaluate": _evaluate, "train_descriptor": _train_descriptor,
    "train_controlnet": _train_controlnet, "check": _check,
}
REQUIRED: dict[str, tuple[str, ...]] = {  # job keys each action reads with job[...]
    "register": ("optical", "sar", "output_dir"), "evaluate": ("pairs_dir",), "train_descriptor": ("pairs_dir", "out"),
    "train_controlnet": ("pairs_dir",), "check": (),
}


def job_problem(job: object) -> str:
    """What is wrong with the job itself ('' when it is well-formed): checked before running, so that a
    KeyError raised *inside* the engine is reported as the bug it is, not as a malformed job."""
    if not isinstance(job, dict):
        return "Job must be a JSON object."
    action = job.get("action")
    if action not in ACTIONS:
        return f"Unknown action {action!r} (use {', '.join(ACTIONS)})."
    missing = [k for k in REQUIRED[action] if job.get(k) in (None, "")]
    return f"Job is missing {', '.join(missing)} for action {action!r}." if missing else ""


def run_job(job: dict) -> int:
    progress = Progress(lambda f, m: _emit({"progress": round(f, 4), "message": m}))
    problem = job_problem(job)
    if problem:
        _emit({"error": problem, "kind": "JobError"})
        return 2
    try:
        _emit({"result": ACTIONS[job["action"]](job, progress)})
        return 0
    except PromptMIDError as exc:
        _emit({"error": str(exc), "kind": type(exc).__name__})
        return 2
    except Exception as exc:  # an engine bug: one line for the user, the traceback for the log
        _emit({"error": f"Internal error: {type(exc).__name__}: {exc}", "kind": "InternalError", "traceback": traceback.format_exc()})
        return 1


def main() -> int:
    job = json.loads(sys.stdin.read())
    from .runtime import configure_process

    # Half the cores by default: QGIS keeps one for its interface; library warnings go to the log file.
    configure_process(int(job.get("threads", 0) or 0))
    return run_job(job)


if __name__ == "__main__":
    sys.exit(main())
