"""Command line: ``promptmid register`` and ``promptmid evaluate``.

Errors from the engine become one line on stderr and a non-zero exit code (2: bad input, 3: could not
register, 4: cannot write, 5: model weights missing, 130: cancelled), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional, Sequence

from . import __version__
from .config import LAND_USE_CLASSES, WARP_TRANSFORMS, EngineConfig, OutputConfig
from .descriptors.registry import available_engines
from .errors import CancelledError, InputError, ModelMissingError, OutputError, PromptMIDError, RegistrationError
from .progress import Progress

EXIT_CODES = {InputError: 2, RegistrationError: 3, OutputError: 4, ModelMissingError: 5, CancelledError: 130}


class StderrBar:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, fraction: float, message: str) -> None:
        if not self.enabled:
            return
        width = 30
        done = int(round(fraction * width))
        line = f"[{'#' * done}{'.' * (width - done)}] {fraction * 100:5.1f}% {message}"
        if self.tty:
            sys.stderr.write("\r" + line[:120].ljust(len(self.last)))
            if fraction >= 1.0:
                sys.stderr.write("\n")
        elif message != self.last:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
        self.last = line[:120] if self.tty else message


def _engine_config(args: argparse.Namespace) -> EngineConfig:
    cfg = EngineConfig(engine=args.engine, land_use=getattr(args, "land_use", None), model_dir=args.model_dir,
                       weights=args.weights, device=args.device)
    if args.max_side:
        cfg.max_side = args.max_side
    if args.keypoints:
        cfg.keypoints.max_keypoints = args.keypoints
    if getattr(args, "land_cover", None):
        cfg.land_cover, cfg.land_cover_legend = args.land_cover, args.land_cover_legend
    if getattr(args, "sar_scale", None):
        cfg.sar_norm.scale = args.sar_scale
    if args.max_rotation is not None:
        cfg.search.max_rotation_deg = cfg.search.georef_max_rotation_deg = args.max_rotation
    if args.scale_range is not None:
        cfg.search.scale_range = cfg.search.georef_scale_range = tuple(sorted(args.scale_range))
    if args.max_shift is not None:
        cfg.search.max_shift_px = cfg.search.georef_max_shift_px = args.max_shift
    cfg.accept_uncertain = bool(getattr(args, "accept_uncertain", False))
    if getattr(args, "sar_band", None):
        cfg.sar_band = args.sar_band
    if getattr(args, "tiling", None):
        cfg.tiling.mode = args.tiling
    return cfg


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default="default", choices=available_engines(),
                   help="descriptor engine: default (= dense, the shipped CPU model: learned maps drive search and "
                        "templates), dense, lite (earlier model: learned descriptors, handcrafted search maps), promptmid (full; needs --model-dir), classical, area (no descriptor), "
                        "sift (peer)")
    p.add_argument("--model-dir", default=None, help="foundation weights for the full engine (default: $PROMPTMID_MODEL_DIR)")
    p.add_argument("--weights", default=None, help="checkpoint for a learned engine: default, dense or lite (default: the shipped one; $PROMPTMID_WEIGHTS for the default engine)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--max-side", type=int, default=None, help="longer side of the matching grid in pixels")
    p.add_argument("--keypoints", type=int, default=None, help="maximum PC-FAST keypoints per image")
    p.add_argument("--max-rotation", type=float, default=None, metavar="DEG",
                   help="global search: rotations within +-DEG (default 12; 3 for a georeferenced SAR)")
    p.add_argument("--scale-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="global search: SAR -> optical scales (default 0.75 1.05; 0.95 1.05 for a georeferenced SAR)")
    p.add_argument("--max-shift", type=float, default=None, metavar="PX",
                   help="global search: shifts within PX matching-grid pixels (default: any for a SAR without "
                        "georeference, 48 for a georeferenced one)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: half the cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="promptmid", description="Co-register SAR rasters onto optical rasters (PromptMID).")
    parser.add_argument("--version", action="version", version=f"promptmid {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    reg = sub.add_parser("register", help="register a SAR raster onto an optical raster")
    reg.add_argument("optical", help="optical reference raster (georeferenced; its CRS is the output CRS)")
    reg.add_argument("sar", help="SAR raster to register (georeferenced or not; 8/16-bit, float, dB)")
    reg.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    reg.add_argument("--land-use", choices=LAND_USE_CLASSES, default=None, help="land-use class of the scene (prompt)")
    reg.add_argument("--land-cover", default=None, help="land-cover raster: its majority class over the overlap is the prompt")
    reg.add_argument("--land-cover-legend", default="worldcover", help="worldcover, corine, whu-opt-sar or a legend JSON")
    reg.add_argument("--transform", choices=WARP_TRANSFORMS, default=OutputConfig.transform,
                     help="warp model: the similarity the engine fits, or a polynomial / spline through the GCPs (default: %(default)s)")
    reg.add_argument("--resampling", default="bilinear", choices=["near", "bilinear", "cubic", "lanczos", "average"])
    reg.add_argument("--output-grid", choices=["optical", "native"], default="optical",
                     help="optical: warped SAR on the optical raster's grid; native: GDAL picks extent/resolution")
    reg.add_argument("--sar-scale", choices=["auto", "linear", "db", "display"], default=None, help="SAR radiometry (default: auto)")
    reg.add_argument("--tiling", choices=["auto", "on", "off"], default=None,
                     help="large scenes: refine the coarse match with full-resolution tiles (auto: when the scene is "
                          "over twice the matching grid)")
    reg.add_argument("--points-source", choices=["auto", "pixel", "layer"], default="auto",
                     help=".points source columns: auto = layer coordinates for a SAR with a geotransform, pixels (y down) "
                          "without one (QGIS >= 3.22.4); pixel for QGIS 3.20-3.22.3")
    reg.add_argument("--sar-band", default=None, metavar="N|mean",
                     help="SAR band to match: a band number, or 'mean' (mean of all bands, e.g. VV+VH) (default: 1)")
    reg.add_argument("--accept-uncertain", action="store_true",
                     help="write the outputs of an uncertain registration too (the report and summary say so); "
                          "without it an uncertain result exits 3 and writes nothing")
    _add_engine_args(reg)

    ev = sub.add_parser("evaluate", help="SR / NCM / RMSE, verdicts and false accepts on a folder of co-registered pairs")
    ev.add_argument("pairs_dir", help="folder with one sub-folder per pair: optical.tif, sar.tif, meta.json")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--protocol", choices=["paper", "georef"], default="paper",
                    help="paper: rotation +-10 deg, scale 0.8-1; georef: shift +-30 px, rotation +-2 deg, scale 0.97-1.03")
    ev.add_argument("--limit", type=int, default=None, help="evaluate only the first N pairs (sorted by id)")
    ev.add_argument("--validation-part", type=float, default=None, metavar="FRACTION",
                    help="evaluate only the validation part of a training folder: the scene groups that training with "
                         "--val-fraction FRACTION holds out (choices are made there, never on the test split)")
    ev.add_argument("--json", dest="json_path", default=None, help="write the summary as JSON")
    ev.add_argument("--csv", dest="csv_path", default=None, help="write per-pair results as CSV")
    ev.add_argument("--markdown", dest="md_path", default=None, help="write the table as Markdown")
    _add_engine_args(ev)
    tr = sub.add_parser("train", help="train descriptors (stage 2) or fine-tune the ControlNet (stage 1)")
    tsub = tr.add_subparsers(dest="stage", required=True)
    td = tsub.add_parser("descriptor", help="stage 2: descriptor learning with InfoNCE")
    td.add_argument("pairs_dir", help="folder of co-registered pairs (train split only)")
    td.add_argument("--out", required=True, help="checkpoint path (.safetensors; a .json config is written beside it)")
    td.add_argument("--profile", choices=["lite", "full"], default="lite")
    td.add_argument("--model-dir", default=None, help="foundation weights (full profile); default $PROMPTMID_MODEL_DIR")
    td.add_argument("--steps", type=int, default=3500)
    td.add_argument("--batch", type=int, default=2)
    td.add_argument("--lr", type=float, default=3e-3)
    td.add_argument("--crop", type=int, default=192)
    td.add_argument("--seed", type=int, default=0)
    td.add_argument("--device", default="auto", help="auto, cpu or cuda")
    td.add_argument("--objective", choices=["points", "dense"], default="points",
                    help="points: InfoNCE (the paper's loss); dense: + hard negatives and translation-correlation "
                         "losses, for a lite model whose maps drive the search and templates")
    td.add_argument("--point-weight", type=float, default=1.0,
                    help="--objective dense: weight of the point losses (InfoNCE, hard negatives) beside the correlation losses")
    td.add_argument("--val-fraction", type=float, default=0.1,
                    help="share of the pairs' scene groups held out for validation (by hash: stable)")
    td.add_argument("--dense-maps", choices=["residual", "free"], default="residual",
                    help="--objective dense: a learned correction of the CFOG channels (starts at CFOG) or free 16-D maps")
    td.add_argument("--size", choices=["small", "base"], default="small", help="lite model size for --objective dense")
    td.add_argument("--no-resume", action="store_true", help="start over even if a training state exists")
    td.add_argument("--card", default=None, help="write a model card (Markdown) here")
    td.add_argument("-q", "--quiet", action="store_true")

    mo = sub.add_parser("models", help="check or download the foundation weights of the full engine")
    msub = mo.add_subparsers(dest="action", required=True)
    for name, text in (("check", "list what is present or missing"), ("download", "fetch missing public weights (needs internet)")):
        m = msub.add_parser(name, help=text)
        m.add_argument("--model-dir", default=None, help="default: $PROMPTMID_MODEL_DIR")

    tc = tsub.add_parser("controlnet", help="stage 1: fine-tune the SAR ControlNet (needs SD 1.5 in the model dir)")
    tc.add_argument("pairs_dir", help="folder of co-registered pairs (train split only)")
    tc.add_argument("--model-dir", default=None, help="default: $PROMPTMID_MODEL_DIR")
    tc.add_argument("--out", default=None, help="ControlNet output folder (default: MODEL_DIR/controlnet-sar)")
    tc.add_argument("--steps", type=int, default=1000)
    tc.add_argument("--batch", type=int, default=2)
    tc.add_argument("--lr", type=float, default=1e-5)
    tc.add_argument("--resolution", type=int, default=512)
    tc.add_argument("--seed", type=int, default=0)
    tc.add_argument("--device", default="auto", help="auto, cpu or cuda")
    tc.add_argument("--no-resume", action="store_true")
    tc.add_argument("-q", "--quiet", action="store_true")

    demo = sub.add_parser("demo", help="misregister a real SAR image by a known error and register it back")
    demo.add_argument("--data", required=True, help="the shared optical-sar folder (holding train/ and test/)")
    demo.add_argument("-o", "--output", required=True, help="output folder")
    _add_engine_args(demo)
    return parser


def _run_train(args: argparse.Namespace) -> int:
    from .training.cli_train import run_train

    return run_train(args, Progress(StderrBar(not args.quiet)))


def _run_models(args: argparse.Namespace) -> int:
    from .descriptors.registry import shipped_checkpoint
    from .models.model_dir import check_model_dir, download_models, format_check, resolve_model_dir

    root = resolve_model_dir(args.model_dir)
    statuses = download_models(root) if args.action == "download" else check_model_dir(root)
    print(f"model directory: {root}")
    print(format_check(statuses))
    default = shipped_checkpoint()
    print(f"{'ok     ' if os.path.isfile(default) else 'MISSING'} default model      {default}")
    missing = [s for s in statuses if s.component.required and not s.present]
    if missing:
        print(f"The full engine is not usable: {len(missing)} required component(s) missing.")
    return 0 if not missing else 5


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    d = run_demo(args.data, args.output, _engine_config(args), Progress(StderrBar(not args.quiet)))
    print(f"Misregistered SAR written to {d.misregistered_sar} (shift + 1.5 deg rotation of its georeference).")
    print(f"Registration: {d.registration.summary()}")
    print(f"Georeference error vs truth: {d.error_before_px:.1f} px before, {d.error_after_px:.2f} px after.")
    print(f"Outputs in {os.path.abspath(args.output)}:")
    for kind, path in d.registration.outputs.items():
        print(f"  {kind}: {path}")
    return 0


def _run_register(args: argparse.Namespace) -> int:
    from .pipeline import register

    out_cfg = OutputConfig(transform=args.transform, resampling=args.resampling, output_grid=args.output_grid,
                           qgis_points_source=args.points_source)
    result = register(args.optical, args.sar, args.output, _engine_config(args), out_cfg, Progress(StderrBar(not args.quiet)))
    print(result.summary())
    for kind, path in result.outputs.items():
        print(f"{kind}: {path}")
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from .descriptors.registry import get_describer
    from .evaluation.protocol import ProtocolConfig, evaluate_folder, summary_json
    from .evaluation.report import markdown_table, write_csv

    cfg = _engine_config(args)
    describer = get_describer(cfg.engine, model_dir=cfg.model_dir, weights=cfg.weights, device=cfg.device)
    t0 = time.perf_counter()
    ids = None
    if args.validation_part is not None:
        from .training.data import split_pairs

        ids = split_pairs(args.pairs_dir, args.validation_part)[1]
        if not ids:
            raise InputError(f"No validation pairs in {args.pairs_dir} at --validation-part {args.validation_part}.")
    summaries = evaluate_folder(args.pairs_dir, describer, cfg, ProtocolConfig.named(args.protocol, args.seed), args.limit,
                                Progress(StderrBar(not args.quiet)), ids=ids)
    table = markdown_table(list(summaries.values()))
    print(table)
    print(f"\n{summaries['all'].n_pairs} pairs in {time.perf_counter() - t0:.0f} s (seed {args.seed}, protocol {args.protocol})")
    if args.md_path:
        with open(args.md_path, "w", encoding="utf-8") as fh:
            fh.write(table + "\n")
    if args.csv_path:
        write_csv(args.csv_path, summaries["all"].pairs)
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump(summary_json(summaries), fh, indent=2, allow_nan=False)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    from .runtime import configure_process

    configure_process(getattr(args, "threads", 0))
    try:
        return {"register": _run_register, "evaluate": _run_evaluate, "demo": _run_demo, "train": _run_train, "models": _run_models}[args.command](args)
    except PromptMIDError as exc:
        sys.stderr.write(f"\npromptmid: error: {exc}\n")
        return next((code for kind, code in EXIT_CODES.items() if isinstance(exc, kind)), 1)
    except KeyboardInterrupt:
        sys.stderr.write("\npromptmid: cancelled\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
