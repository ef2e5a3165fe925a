"""One GPU lease for the issue "The shipped PromptMID model, trained for dense matching", in one command.

Here, first: `make device-kit` (packs the train part of the train split and the missing wheels into the
git-ignored `.device/`); try the whole script on CPU with `make device-dry-run`. Then, with the device
tool, from the repository root:

    run(command="python3 scripts/device/session.py", carry=[".device"], timeout_s=600)

It works through, each phase on its own (a failure is recorded and the next phase still runs):

1. set-up: the carried wheels into /tmp/site; a stand-in for GDAL, which the GPU image lacks and which
   the training path imports but never calls (it reads rasters only through the pack);
2. the packed train pairs prepared on all cores (`training.data.prepare_pair`, as `load_pairs` does);
3. the full profile at real size (SD 1.5 UNet / VAE / CLIP text encoder, ControlNet, DINOv2-base, VGG19
   with random weights from their published configurations, `models.random_model_dir`): each branch's
   dense pass on a 512 px pair in fp16 (autocast), after a warm-up, mean of three; first, as it is short;
4. the dense recipe of `make train-default` (same network, objective, losses, batch, learning rate, crop,
   seed) on the GPU, its samples made by CPU workers (`Stage2Config.workers`): a short probe measures
   the pace, then one run with as many steps as fit in what is left of ``--budget-s`` (the cosine
   schedule spans them), so the command ends inside the tool's 600 s.

Everything comes back under $OUT: `promptmid-dense-gpu.safetensors` (+ `.json`), `session.json` (what each
phase did, its times and errors), `session.log`. Back here, validate the checkpoint on the held-out part
of the train split (`promptmid evaluate TRAIN --validation-part 0.2 --engine dense --weights ...`)
before anything is shipped; the lease's training has no validation of its own.
"""

from __future__ import annotations

import argparse
import glob
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS (seed_everything asks for it)
REPO = Path(__file__).resolve().parents[2]
KIT = REPO / ".device"
LOG: list[str] = []


def log(msg: str) -> None:
    line = f"[{time.strftime('%H:%M:%S')}] {msg}"
    LOG.append(line)
    print(line, flush=True)


def install_wheels(site: str = "/tmp/site") -> None:
    """The kit's wheels for packages the running Python lacks (none needed on this machine: skipped)."""
    missing = []
    for wheel in sorted(glob.glob(str(KIT / "whl" / "*.whl"))):
        module = Path(wheel).name.split("-")[0].lower()
        try:
            __import__(module)
        except ImportError:
            missing.append(wheel)
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", site, *missing], check=True)
        sys.path.insert(0, site)
        log(f"installed {', '.join(Path(w).name for w in missing)}")


def stand_in_for_gdal() -> None:
    """GDAL is imported by modules on the training path (rasters, evaluation) but never called there: a module
    whose every attribute is an inert callable lets them import on a machine without it."""
    try:
        import osgeo  # noqa: F401
        return
    except ImportError:
        pass

    class Inert:
        def __call__(self, *a, **k):
            return self

        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return self

    inert = Inert()

    def attribute(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return inert

    pkg = types.ModuleType("osgeo")
    pkg.__path__ = []
    for name in ("gdal", "osr", "ogr", "gdal_array", "gdalconst"):
        mod = types.ModuleType(f"osgeo.{name}")
        mod.__getattr__ = attribute  # PEP 562: every attribute of the module is the inert callable
        setattr(pkg, name, mod)
        sys.modules[f"osgeo.{name}"] = mod
    sys.modules["osgeo"] = pkg
    log("GDAL absent: stand-in module for imports")


def unpack(path: Path) -> tuple[list[dict], dict]:
    """The pack's pairs as work-grid arrays (bands, H, W) float32 + masks, and its metadata."""
    import cv2
    import numpy as np

    z = np.load(path)
    info = json.loads(bytes(z["meta.json"]).decode())
    out = []
    for m in info["pairs"]:
        pid = m["id"]
        opt = cv2.imdecode(z[f"{pid}/optical"], cv2.IMREAD_COLOR)
        opt = opt[..., ::-1].transpose(2, 0, 1) if opt.ndim == 3 else opt[None]
        sar = cv2.imdecode(z[f"{pid}/sar"], cv2.IMREAD_GRAYSCALE)[None]  # WebP stores grey as RGB
        ov = np.unpackbits(z[f"{pid}/optical_valid"])[: opt.shape[1] * opt.shape[2]].reshape(opt.shape[1:]).astype(bool)
        sv = np.unpackbits(z[f"{pid}/sar_valid"])[: sar.shape[1] * sar.shape[2]].reshape(sar.shape[1:]).astype(bool)
        out.append(dict(id=pid, optical=np.ascontiguousarray(opt, np.float32), optical_valid=ov,
                        sar=np.ascontiguousarray(sar, np.float32), sar_valid=sv, sar_dtype=m["sar_dtype"], land_use=m["land_use"]))
    return out, info


def _prepare(item: dict):
    import torch

    from promptmid.config import EngineConfig
    from promptmid.training.data import prepare_pair

    torch.set_num_threads(1)
    return prepare_pair(item["id"], item["optical"], item["optical_valid"], item["sar"], item["sar_valid"],
                        item["sar_dtype"], item["land_use"], EngineConfig())


def prepare_all(items: list[dict], workers: int) -> list:
    with mp.get_context("fork").Pool(workers) as pool:
        # a timeout: a worker that dies or hangs must fail this phase, not stall the lease
        return [p for p in pool.map_async(_prepare, items, chunksize=2).get(timeout=600) if p is not None]


def dense_recipe(out_path: str, steps: int, device: str, workers: int):
    """`make train-default`'s settings (see the Makefile), on ``device`` with worker-made samples."""
    from promptmid.training.cli_train import stage2_network
    from promptmid.training.stage2 import Stage2Config, seed_everything

    seed_everything(0)
    net = stage2_network("lite", None, device, objective="dense", size="small", dense_maps="residual")
    cfg = Stage2Config(pairs_dir="", out_path=out_path, steps=steps, batch=2, lr=5e-3, point_weight=0.1, seed=0,
                       objective="dense", val_fraction=0.2, device=device, workers=workers, threads=4)
    cfg.augment.crop = 160
    cfg.dense_augment.crop = 160
    return net, cfg


def train(pairs: list, device: str, workers: int, minutes: float, probe_steps: int, out_dir: Path) -> dict:
    from promptmid.training.stage2 import train_stage2

    res: dict = {"device": device, "workers": workers, "pairs": len(pairs)}
    with tempfile.TemporaryDirectory() as tmp:
        net, cfg = dense_recipe(os.path.join(tmp, "probe.safetensors"), probe_steps, device, workers)
        t0 = time.perf_counter()
        train_stage2(net, cfg, pairs=pairs, resume=False)
        per_step = (time.perf_counter() - t0) / probe_steps
    steps = max(probe_steps, int(minutes * 60 / per_step))
    res.update(probe_s_per_step=round(per_step, 4), steps=steps)
    log(f"probe: {per_step:.3f} s per step with {workers} sample workers; training {steps} steps")
    out = out_dir / "promptmid-dense-gpu.safetensors"
    net, cfg = dense_recipe(str(out), steps, device, workers)
    t0 = time.perf_counter()
    every = max(50, steps // 20)

    def sparse_log(msg: str) -> None:  # every twentieth progress line
        if not msg.startswith("step ") or int(msg.split()[1].split("/")[0]) % every == 0:
            log(msg)

    state = train_stage2(net, cfg, pairs=pairs, resume=False, log=sparse_log)
    res.update(seconds=round(time.perf_counter() - t0, 1), final_loss=float(sum(state.losses[-200:]) / max(len(state.losses[-200:]), 1)),
               loss_curve=[round(float(sum(state.losses[i:i + 200]) / len(state.losses[i:i + 200])), 4)
                           for i in range(0, len(state.losses), max(200, len(state.losses) // 20))],
               weights=out.name)
    return res


def time_full_profile(device: str, size: int, spec_name: str, items: list[dict]) -> dict:
    """Each branch's dense pass of the full profile at ``size`` px, fp16 autocast on a GPU (fp32 on CPU)."""
    import numpy as np
    import torch

    from promptmid.config import EngineConfig
    from promptmid.descriptors.registry import get_describer
    from promptmid.models.random_model_dir import SD15, TINY, write_random_model_dir
    from promptmid.prepare import prepare_optical, prepare_sar

    res: dict = {"size_px": size, "spec": spec_name}
    big = next(i for i in items if min(i["sar"].shape[1:]) >= size)  # a work-grid s1s2 pair (512 px)
    with tempfile.TemporaryDirectory(dir="/tmp") as model_dir:
        t0 = time.perf_counter()
        write_random_model_dir(model_dir, {"sd15": SD15, "tiny": TINY}[spec_name], with_controlnet=True, seed=0)
        res["write_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        describer = get_describer("promptmid", model_dir=model_dir, device=device)
        res["load_s"] = round(time.perf_counter() - t0, 1)
        cfg = EngineConfig(engine="promptmid")
        sl = (slice(None), slice(0, size), slice(0, size))
        images = {"optical": prepare_optical(big["optical"][sl], big["optical_valid"][sl[1:]], cfg),
                  "sar": prepare_sar(big["sar"][sl], big["sar_valid"][sl[1:]], big["sar_dtype"], cfg)}
        sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        half = device.startswith("cuda")
        for kind, img in images.items():
            times = []
            for _ in range(4):  # the first is the warm-up (kernel selection, allocator)
                with torch.inference_mode(), torch.autocast(device_type=device.split(":")[0], dtype=torch.float16, enabled=half):
                    sync()
                    t0 = time.perf_counter()
                    y = describer._forward(img)
                    sync()
                    times.append(time.perf_counter() - t0)
            res[kind] = {"s": round(float(np.mean(times[1:])), 4), "first_s": round(times[0], 3), "map": list(y.shape),
                         "dtype": str(y.dtype)}
            log(f"full profile, {kind} branch at {size} px: {res[kind]['s']:.3f} s ({'fp16' if half else 'fp32'})")
        res["pair_s"] = round(res["optical"]["s"] + res["sar"]["s"], 4)
        if half:
            res["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget-s", type=float, default=540.0, help="the whole session; training gets what is left")
    ap.add_argument("--minutes", type=float, default=None, help="training time after the probe (default: from the budget)")
    ap.add_argument("--probe-steps", type=int, default=30)
    ap.add_argument("--device", default=None, help="default: cuda when there is one, else cpu")
    ap.add_argument("--workers", type=int, default=None, help="sample workers (default: cores - 2)")
    ap.add_argument("--full-spec", default="sd15", choices=("sd15", "tiny"), help="tiny: the tests' sizes (a dry run)")
    ap.add_argument("--limit-pairs", type=int, default=None, help="a dry run's subset")
    ap.add_argument("--skip", default="", help="phases to skip: train,full")
    ap.add_argument("--out", default=os.environ.get("OUT", str(REPO / "out" / "device-session")))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[1:]}
    t_start = time.perf_counter()

    def phase(name: str, fn):
        t0 = time.perf_counter()
        try:
            summary[name] = fn()
        except Exception as exc:  # record and go on: one lease, every phase gets its chance
            summary[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-3000:]}
            log(f"{name} failed: {type(exc).__name__}: {exc}")
        if isinstance(summary[name], dict):
            summary[name]["phase_s"] = round(time.perf_counter() - t0, 1)
        (out / "session.json").write_text(json.dumps(summary, indent=1, default=str))
        (out / "session.log").write_text("\n".join(LOG) + "\n")

    def setup() -> dict:
        install_wheels()
        stand_in_for_gdal()
        sys.path.insert(0, str(REPO / "core"))
        import torch

        dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        info = {"device": dev, "torch": torch.__version__, "cores": os.cpu_count()}
        if dev.startswith("cuda"):
            info["gpu"] = torch.cuda.get_device_name(0)
        summary["_device"] = dev
        return info

    phase("setup", setup)
    device = summary.get("_device", "cpu")
    workers = args.workers if args.workers is not None else max(1, (os.cpu_count() or 2) - 2)
    state: dict = {}

    def load() -> dict:
        items, info = unpack(KIT / "train_pack.npz")
        state["items"] = items  # all of them: the full profile's timing wants a 512 px scene
        t0 = time.perf_counter()
        state["pairs"] = prepare_all(items[: args.limit_pairs] if args.limit_pairs else items, max(1, os.cpu_count() or 1))
        log(f"{len(state['pairs'])} pairs prepared in {time.perf_counter() - t0:.1f} s")
        return {"pairs": len(state["pairs"]), "validation_ids_kept_back": len(info["validation_ids"])}

    phase("data", load)
    if "full" not in args.skip and state.get("items"):
        phase("full_profile", lambda: time_full_profile(device, 512, args.full_spec, state["items"]))
    if "train" not in args.skip and state.get("pairs"):
        # what is left, less the probe (about a minute with worker start-up) and saving
        minutes = args.minutes if args.minutes is not None else (args.budget_s - (time.perf_counter() - t_start) - 90) / 60
        if minutes > 0.2:
            phase("train", lambda: train(state["pairs"], device, workers, minutes, args.probe_steps, out))
        else:
            summary["train"] = {"error": f"no time left for training ({minutes:.1f} min)"}
    summary["total_s"] = round(time.perf_counter() - t_start, 1)
    (out / "session.json").write_text(json.dumps(summary, indent=1, default=str))
    (out / "session.log").write_text("\n".join(LOG) + "\n")
    failed = [k for k, v in summary.items() if isinstance(v, dict) and "error" in v]
    log(f"done in {summary['total_s']} s; failed phases: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
