"""The full engine at real size, on CPU, once: `make full-size-check` (not part of `make test`).

Writes SD 1.5 (UNet, VAE, CLIP ViT-L/14 text encoder, a generated CLIP tokenizer, PNDM scheduler config), a
ControlNet of the same size, DINOv2-base and a torchvision-keyed VGG19 with random weights from their published
configurations into a temporary model directory in the standard layout (about 6.6 GB; the writer is
promptmid.models.random_model_dir, shared with the tests' tiny directory), cuts the central SIZE x SIZE pixels of
a real pair (georeference kept), then runs the real CLI

    promptmid register OPTICAL SAR -o OUT --engine promptmid --model-dir DIR --accept-uncertain --threads N

and measures its wall time, peak resident memory and the time and memory at each progress message. With random
weights the registration itself is meaningless: exit code 0 (registered) and 3 (could not register) both count
as a completed run; anything else (a crash, exit 1/2/4/5) fails the check.

Outputs: OUT/full_size_check.json and .md (default out/full-size-check); the Markdown table is printed too.
Then, in a second process, the network is loaded again and each branch timed alone on the crop (the CLI's
`guided` stage holds both; --no-branches skips this). Exit code 0 when both completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "core"))

from osgeo import gdal  # noqa: E402

gdal.UseExceptions()
for _var in ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE"):  # the writer's save_pretrained progress bars
    os.environ.setdefault(_var, "1")
STAGES = ("prepare", "dense", "search", "guided", "fit_verdict")  # registration.match_prepared's timings, in order
SPEC_MARK = "full-size-check.json"  # written last: a directory with it is complete and may be reused (--model-dir)
COMPLETED = (0, 3)  # registered / could not register (random weights): the engine ran end to end


def _proc_mem_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a live process in MiB; (nan, nan) once it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return float("nan"), float("nan")


class MemorySampler(threading.Thread):
    """Peaks of a child's anonymous and file-backed resident memory (polled /proc): the safetensors weights are
    memory-mapped, so much of the peak RSS is page cache the kernel can drop and re-read under pressure."""

    def __init__(self, pid: int, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.peak = {"RssAnon": 0, "RssFile": 0}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                text = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            for line in text.splitlines():
                key = line.split(":", 1)[0]
                if key in self.peak:
                    self.peak[key] = max(self.peak[key], int(line.split()[1]) // 1024)


def _dir_size_gb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


def write_models(model_dir: Path, spec_name: str, threads: int) -> float:
    """Random-weight model directory of ``spec_name`` (sd15 = real size, tiny = the tests' one, to try the
    script quickly); returns the seconds it took (0 when an earlier run's complete directory is reused)."""
    mark = model_dir / SPEC_MARK
    if mark.is_file() and json.loads(mark.read_text()).get("spec") == spec_name:
        print(f"reusing {model_dir}", file=sys.stderr)
        return 0.0
    import torch

    from promptmid.models.random_model_dir import SD15, TINY, write_random_model_dir

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    write_random_model_dir(str(model_dir), {"sd15": SD15, "tiny": TINY}[spec_name], with_controlnet=True, seed=0,
                           log=lambda m: print(f"writing {m} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr))
    seconds = time.perf_counter() - t0
    mark.write_text(json.dumps({"spec": spec_name, "seed": 0, "seconds": seconds}))
    return seconds


def crop_pair(pair: Path, size: int, dest: Path) -> tuple[Path, Path]:
    """The central size x size pixels of optical.tif and sar.tif (georeference kept)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("optical.tif", "sar.tif"):
        ds = gdal.Open(str(pair / name))
        if ds.RasterXSize < size or ds.RasterYSize < size:
            raise SystemExit(f"{pair / name} is smaller than {size} px")
        x0, y0 = (ds.RasterXSize - size) // 2, (ds.RasterYSize - size) // 2
        path = dest / name
        gdal.Translate(str(path), ds, srcWin=[x0, y0, size, size], format="GTiff")
        out.append(path)
    return out[0], out[1]


def run_cli(optical: Path, sar: Path, model_dir: Path, out: Path, threads: int) -> dict:
    """The real CLI in a child process: exit code, wall time, peak RSS and a timeline of its progress messages."""
    exe = Path(sys.executable).with_name("promptmid")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "promptmid.cli"]
    cmd += ["register", str(optical), str(sar), "-o", str(out), "--engine", "promptmid", "--model-dir", str(model_dir),
            "--device", "cpu", "--accept-uncertain", "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join([str(REPO / "core"), os.environ.get("PYTHONPATH", "")]))
    print("$ " + " ".join(cmd), file=sys.stderr)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sampler = MemorySampler(proc.pid)
    sampler.start()
    timeline, tail = [], []
    assert proc.stderr is not None
    for line in proc.stderr:  # plain progress lines (stderr is not a terminal) and the one-line error, if any
        rss, hwm = _proc_mem_mib(proc.pid)
        line = line.rstrip("\n")
        if not line.strip():
            continue
        message = line.split("% ", 1)[1] if line.startswith("[") and "% " in line else line
        timeline.append({"s": round(time.perf_counter() - t0, 1), "rss_mib": round(rss), "peak_mib": round(hwm),
                         "message": message[:100]})
        tail.append(line)
        print(f"  {timeline[-1]['s']:7.1f} s {rss:7.0f} MiB  {message}", file=sys.stderr)
    stdout = proc.stdout.read() if proc.stdout else ""
    rc = proc.wait()
    wall = time.perf_counter() - t0
    sampler.stop.set()
    sampler.join()
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB; only child is the CLI
    report_path = next((line.split(": ", 1)[1] for line in stdout.splitlines() if line.startswith("report: ")), None)
    report = json.loads(Path(report_path).read_text()) if report_path and Path(report_path).is_file() else None
    return dict(command=cmd, exit_code=rc, wall_s=round(wall, 1), peak_rss_mib=round(peak_mib),
                peak_anon_mib=sampler.peak["RssAnon"], peak_file_mib=sampler.peak["RssFile"], timeline=timeline,
                stdout=stdout.strip(), stderr_tail=tail[-5:], report=report)


def time_branches(model_dir: Path, optical: Path, sar: Path, threads: int) -> dict:
    """(Child process) the parts of the full engine the CLI's `guided` stage hides: loading the network, then one
    dense pass of each branch on the crop, with the process's peak memory after each."""
    import numpy as np

    from promptmid.config import EngineConfig
    from promptmid.descriptors.registry import get_describer
    from promptmid.prepare import prepare_optical, prepare_sar
    from promptmid.runtime import configure_process

    configure_process(threads)
    cfg = EngineConfig(engine="promptmid", model_dir=str(model_dir), device="cpu")
    out: dict = {}
    t0 = time.perf_counter()
    describer = get_describer(cfg.engine, model_dir=cfg.model_dir, device=cfg.device)
    out["load"] = (time.perf_counter() - t0, _proc_mem_mib(os.getpid())[1])
    images = {}
    for kind, path in (("optical", optical), ("sar", sar)):
        ds = gdal.Open(str(path))
        bands = ds.ReadAsArray().astype(np.float32)
        bands = bands if bands.ndim == 3 else bands[None]
        valid = np.ones(bands.shape[1:], bool)
        dtype = gdal.GetDataTypeName(ds.GetRasterBand(1).DataType)
        images[kind] = prepare_optical(bands, valid, cfg) if kind == "optical" else prepare_sar(bands, valid, dtype, cfg)
    draws = describer.net.cfg.diffusion.ensemble
    for kind, label in (("optical", "optical branch (DINOv2 + VGG19)"),
                        ("sar", f"SAR branch (VAE + {draws} x (ControlNet + UNet))")):
        t0 = time.perf_counter()
        shape = tuple(describer.dense(images[kind]).shape)
        out[label] = (time.perf_counter() - t0, _proc_mem_mib(os.getpid())[1], shape)
    return {k: dict(s=round(v[0], 1), peak_mib=round(v[1]), **({"map": list(v[2])} if len(v) > 2 else {}))
            for k, v in out.items()}


def run_branches(model_dir: Path, optical: Path, sar: Path, threads: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child-branches", str(model_dir), str(optical), str(sar),
           "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def markdown(result: dict) -> str:
    run, rep = result["run"], result["run"]["report"] or {}
    size = f"{result['model_dir_gb']:.1f} GB"
    gib = {k: run[k] / 1024 for k in ("peak_rss_mib", "peak_anon_mib", "peak_file_mib")}
    rows = [("machine", result["machine"]),
            ("model directory", f"{size}, written in {result['write_s']:.0f} s" if result["write_s"] else f"{size} (reused)"),
            ("input", result["input"]),
            ("exit code", f"{run['exit_code']} ({'completed' if result['ok'] else 'FAILED'})"),
            ("wall time", f"{run['wall_s']:.0f} s"),
            ("peak memory (max RSS)", f"{gib['peak_rss_mib']:.1f} GiB (peaks: {gib['peak_anon_mib']:.1f} GiB anonymous, "
                                      f"{gib['peak_file_mib']:.1f} GiB file-backed = mapped weights)")]
    if rep:
        rows.append(("verdict", f"{rep.get('verdict')} ({rep.get('n_inliers')} inliers)"))
        timings = rep.get("timings", {})
        order = [k for k in STAGES if k in timings] + [k for k in timings if k not in STAGES]
        rows += [(f"stage `{k}`", f"{timings[k]:.1f} s") for k in order]
    for name, b in result.get("branches", {}).items():  # measured apart, in a second process
        rows.append((f"apart: {name}", f"error: {b}" if name == "error" else
                     f"{b['s']:.1f} s, peak {b['peak_mib'] / 1024:.1f} GiB" + (f", map {b['map']}" if "map" in b else "")))
    lines = ["| full-size check | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    lines += ["", "| s | RSS MiB | peak MiB | progress message |", "|---:|---:|---:|---|"]
    lines += [f"| {e['s']:.1f} | {e['rss_mib']} | {e['peak_mib']} | {e['message']} |" for e in run["timeline"]]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "optical-sar"), help="data set root")
    ap.add_argument("--pair", default="test/s1s2_163", help="pair folder under --data (optical.tif, sar.tif)")
    ap.add_argument("--size", type=int, default=512, help="side of the central crop, pixels")
    ap.add_argument("--spec", choices=("sd15", "tiny"), default="sd15",
                    help="sd15: the published sizes (the check); tiny: the tests' sizes (tries the script in seconds)")
    ap.add_argument("--threads", type=int, default=1, help="torch / OpenCV / GDAL threads (writer and CLI)")
    ap.add_argument("--work", default="", help="scratch folder (default: a new one under /tmp)")
    ap.add_argument("--model-dir", default="", help="reuse a directory an earlier --keep run wrote")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (model directory included)")
    ap.add_argument("--out", default=str(REPO / "out" / "full-size-check"), help="where the JSON and Markdown go")
    ap.add_argument("--no-branches", action="store_true", help="skip timing the network branches apart")
    ap.add_argument("--child-branches", nargs=3, metavar=("MODEL_DIR", "OPTICAL", "SAR"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_branches:
        print(json.dumps(time_branches(*map(Path, args.child_branches), args.threads)))
        return 0

    work = Path(args.work or tempfile.mkdtemp(prefix="promptmid-full-size-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = Path(args.model_dir) if args.model_dir else work / "models"
    try:
        write_s = write_models(model_dir, args.spec, args.threads)
        optical, sar = crop_pair(Path(args.data) / args.pair, args.size, work / "pair")
        out = work / "registered"
        shutil.rmtree(out, ignore_errors=True)
        run = run_cli(optical, sar, model_dir, out, args.threads)
        branches = {} if args.no_branches else run_branches(model_dir, optical, sar, args.threads)
        result = dict(spec=args.spec, machine=f"{os.cpu_count()} cores, {args.threads} torch thread(s), CPU only",
                      input=f"{args.pair}, central {args.size} x {args.size} px", write_s=round(write_s),
                      model_dir_gb=round(_dir_size_gb(model_dir), 2), run=run, branches=branches,
                      ok=run["exit_code"] in COMPLETED and "error" not in branches)
        table = markdown(result)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "full_size_check.json").write_text(json.dumps(result, indent=2))
        (Path(args.out) / "full_size_check.md").write_text(table + "\n")
        print(table)
        if run["exit_code"] not in COMPLETED:
            print("\n".join(run["stderr_tail"]), file=sys.stderr)
        return 0 if result["ok"] else 1
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
