"""The .points file in the real QGIS Georeferencer (desktop under Xvfb): `make gui-check`.

Registers copies of the Sentinel-1 image of the s1s2_163 pair whose true georeference is known, writes the
.points file the way the plugin asks for it, then drives the QGIS desktop's Georeferencer with its own
actions and dialogs (scripts/gui_check_desktop.py): Open Raster, Load GCP Points, Transformation Settings,
Start Georeferencing. It compares what the Georeferencer shows and writes with the engine's numbers:

  north_up   SAR shifted by (23.4, -15.7) px, north-up geotransform: .points in layer coordinates.
             Expect every GCP marker on the raster, the Georeferencer's mean error and per-GCP residuals
             equal to ours, and its output's origin and pixel size equal to GDAL's warp of our GCPs.
  gcp_only   the same SAR georeferenced by 25 GCPs only (like a Sentinel-1 GRD), no geotransform:
             .points in pixels. Expect the same mean error and output as ours. (QGIS draws such a
             raster in its GCPs' CRS but fits it in pixels, so the markers are not drawn on it.)
  rotated    the demo's SAR: shifted and rotated 1.5 degrees (a rotated geotransform): layer
             coordinates. QGIS 3.22 drops the rotation terms when it turns layer coordinates back into
             pixels, so its output is sheared; expect it to equal that prediction (a QGIS limitation).
  pixel_file control: the north-up SAR with a pixel-convention file, the issue's report. Expect no
             marker on the raster and a mean error ten times too small.
  similarity the north-up SAR registered with the default transform (similarity), in the Georeferencer
             as Helmert (QGIS's similarity). Expect every marker on the raster, the same per-GCP residuals
             and mean error (Helmert's: sqrt(sum r^2 / (n - 2))), and an output on GDAL's affine warp of
             the same GCPs within 2 px (the two models differ by the tie points' small shear).

Outputs in OUT (default out/gui-check): report.json, report.md, georeferencer_<case>.png, desktop.png.
Needs the QGIS desktop and Xvfb (apt-get install qgis xvfb openbox); uses $DISPLAY when it is set.
Exit code 0 when every expectation holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "core"))

from osgeo import gdal  # noqa: E402

from promptmid.config import EngineConfig, OutputConfig  # noqa: E402
from promptmid.demo import misregister  # noqa: E402
from promptmid.pipeline import register  # noqa: E402

gdal.UseExceptions()
# The engine's transform -> the Georeferencer's name for the same model.
GEOREFERENCER = {"affine": "Polynomial 1", "similarity": "Helmert"}
MIN_GCPS = {"Polynomial 1": 3, "Helmert": 2}  # the Georeferencer's mean error divides by n minus these


# -- inputs -----------------------------------------------------------------------------------------
def gcp_only_copy(src: str, dst: str, n: int = 5) -> None:
    """``src`` with its geotransform replaced by n x n GCPs in the same CRS (no geotransform left)."""
    ds = gdal.Open(src)
    gt, w, h = ds.GetGeoTransform(), ds.RasterXSize, ds.RasterYSize
    gcps = [gdal.GCP(gt[0] + p * gt[1] + l * gt[2], gt[3] + p * gt[4] + l * gt[5], 0, float(p), float(l))
            for p in np.linspace(0, w, n) for l in np.linspace(0, h, n)]
    gdal.Translate(dst, ds, format="GTiff", GCPs=gcps, outputSRS=ds.GetProjection(), creationOptions=["COMPRESS=DEFLATE"])
    assert gdal.Open(dst).GetGeoTransform(can_return_null=True) is None


def make_cases(data: Path, work: Path, engine: str) -> list[dict]:
    pair = data / "test" / "s1s2_163"
    optical, sar = str(pair / "optical.tif"), str(pair / "sar.tif")
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    north_up, rotated, gcp_only = (str(inputs / f"sar_{n}.tif") for n in ("north_up", "rotated", "gcp_only"))
    misregister(sar, north_up, (23.4, -15.7), 0.0)
    misregister(sar, rotated, (23.4, -15.7), 1.5)
    gcp_only_copy(north_up, gcp_only)
    cases = []
    for name, path, source, transform in (("north_up", north_up, "auto", "affine"), ("gcp_only", gcp_only, "auto", "affine"),
                                          ("rotated", rotated, "auto", "affine"), ("pixel_file", north_up, "pixel", "affine"),
                                          ("similarity", north_up, "auto", "similarity")):
        t0 = time.perf_counter()
        # kept whatever the verdict: what is checked here is how QGIS reads the file, not the registration
        result = register(optical, path, str(work / f"run_{name}"), EngineConfig(engine=engine, accept_uncertain=True),
                          OutputConfig(transform=transform, qgis_points_source=source))
        print(f"registered {name}: {result.n_gcps} GCPs, RMSE {result.rmse_px:.2f} px ({time.perf_counter() - t0:.0f} s)", flush=True)
        # the Georeferencer opens a raster next to its GCPs: give each case its own copy
        raster = work / "georef" / name / Path(path).name
        raster.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, raster)
        cases.append({"name": name, "raster": str(raster), "points": result.outputs["points"], "source": source,
                      "output": str(work / "georef" / name / "georeferenced.tif"), "transform": GEOREFERENCER[transform], "crs": "EPSG:3395",
                      "optical": optical, "true_sar": sar, "engine_warped": result.outputs["warped"]})
    return cases


# -- the desktop ------------------------------------------------------------------------------------
def _free_display() -> str:
    for n in range(99, 130):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            return f":{n}"
    raise RuntimeError("no free X display number")


def run_desktop(cases: list[dict], out: Path, timeout_s: float = 420.0) -> dict:
    """Start Xvfb (+ openbox) and QGIS with the driver script; wait for its result; stop what was started."""
    started: list[subprocess.Popen] = []
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "PYTHONPATH")}
    try:
        if not env.get("DISPLAY"):
            env["DISPLAY"] = _free_display()
            started.append(subprocess.Popen(["Xvfb", env["DISPLAY"], "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(1.5)
            if shutil.which("openbox"):  # a window manager keeps dialogs focused, as on a desktop
                started.append(subprocess.Popen(["openbox"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        profiles = Path(tempfile.mkdtemp(prefix="promptmid-gui-"))
        (profiles / "profiles" / "gui-check" / "QGIS").mkdir(parents=True)
        result_path = out / "desktop_result.json"
        if result_path.exists():
            result_path.unlink()
        plan = out / "plan.json"
        plan.write_text(json.dumps({"result": str(result_path), "cases": cases}, indent=1))
        env["PROMPTMID_GUI_PLAN"] = str(plan)
        log = open(out / "qgis.log", "w")
        qgis = subprocess.Popen(["qgis", "--profiles-path", str(profiles), "--profile", "gui-check", "--nologo", "--noversioncheck",
                                 "--code", str(REPO / "scripts" / "gui_check_desktop.py")], env=env, stdout=log, stderr=subprocess.STDOUT)
        started.append(qgis)
        deadline = time.monotonic() + timeout_s
        result: dict = {}
        while time.monotonic() < deadline and qgis.poll() is None:
            time.sleep(2)
            if result_path.exists():
                result = json.loads(result_path.read_text())
                if result.get("done"):
                    break
        subprocess.run(["import", "-display", env["DISPLAY"], "-window", "root", str(out / "desktop.png")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30, check=False)
        if not result.get("done"):
            result["error"] = result.get("error") or f"the desktop did not finish within {timeout_s:.0f} s (see {out / 'qgis.log'})"
        shutil.rmtree(profiles, ignore_errors=True)
        return result
    finally:
        for proc in reversed(started):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


# -- comparison -------------------------------------------------------------------------------------
def _ours(points: str, transform: str = "Polynomial 1") -> tuple[np.ndarray, float]:
    """(per-GCP residual in pixels, the Georeferencer's mean-error formula on them: sqrt(sum r^2 / (n - k)),
    k the fewest GCPs its transform takes)."""
    rows = np.array([[float(v) for v in ln.split(",")] for ln in open(points, encoding="utf-8").read().splitlines()[2:]])
    res = rows[:, 7]
    return res, float(np.sqrt(np.sum(res ** 2) / (len(res) - MIN_GCPS[transform])))


def _gdal_warp_of(points: str, raster: str, source: str) -> tuple:
    """Geotransform and size of GDAL's own warp of ``raster`` through the file's GCPs (GDAL's output grid)."""
    rows = np.array([[float(v) for v in ln.split(",")[:4]] for ln in open(points, encoding="utf-8").read().splitlines()[2:]])
    ds = gdal.Open(raster)
    gt = ds.GetGeoTransform(can_return_null=True)
    if source == "layer":
        det = gt[1] * gt[5] - gt[2] * gt[4]
        dx, dy = rows[:, 2] - gt[0], rows[:, 3] - gt[3]
        pix, lin = (gt[5] * dx - gt[2] * dy) / det, (gt[1] * dy - gt[4] * dx) / det
    elif source == "axis_aligned":  # what QGIS 3.22 does: rotation terms of the geotransform ignored
        pix, lin = (rows[:, 2] - gt[0]) / gt[1], (rows[:, 3] - gt[3]) / gt[5]
    else:
        pix, lin = rows[:, 2], -rows[:, 3]
    vrt = gdal.Translate("", ds, format="VRT", GCPs=[gdal.GCP(x, y, 0, p, l) for (x, y), p, l in zip(rows[:, :2], pix, lin)],
                         outputSRS="EPSG:3395")
    w = gdal.Warp("", vrt, format="VRT", polynomialOrder=1, dstSRS="EPSG:3395")
    return w.GetGeoTransform(), (w.RasterXSize, w.RasterYSize)


def _float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def compare(case: dict, seen: dict) -> dict:
    """What the Georeferencer showed and wrote against ours; ``checks`` maps each expectation to pass/fail."""
    if "error" in seen:
        return {"name": case["name"], "checks": {"the Georeferencer ran": False}, "error": seen["error"]}
    ours, our_mean = _ours(case["points"], case["transform"])
    headers = seen["headers"]
    col = headers.index("Residual (pixels)")
    theirs = np.array([_float(r[col]) for r in seen["rows"]])
    mean_label = next((lbl for lbl in seen["labels"] if "Mean error" in lbl), "")
    their_mean = _float(mean_label.split("Mean error:")[-1]) if mean_label else float("nan")
    written = gdal.Open(case["output"]) if seen.get("output_written") else None
    out_gt = written.GetGeoTransform() if written is not None else None
    source = "layer" if case["name"] in ("north_up", "rotated", "similarity") else "pixel"
    ref_gt, _ = _gdal_warp_of(case["points"], case["raster"], source)
    row = {"name": case["name"], "n_gcps": len(ours), "rows_loaded": seen["n_rows"], "markers_on_raster": seen["markers_on_raster"],
           "mean_error_qgis_px": their_mean, "mean_error_ours_px": our_mean,
           "residual_max_diff_px": float(np.nanmax(np.abs(theirs - ours))) if len(theirs) == len(ours) else float("nan"),
           "output_origin": out_gt and (out_gt[0], out_gt[3]), "output_pixel": out_gt and (out_gt[1], out_gt[5]),
           "gdal_origin": (ref_gt[0], ref_gt[3]), "gdal_pixel": (ref_gt[1], ref_gt[5])}
    if out_gt:
        row["origin_offset_px"] = float(np.hypot(out_gt[0] - ref_gt[0], out_gt[3] - ref_gt[3]) / abs(ref_gt[1]))
    same_numbers = abs(their_mean - our_mean) <= 0.02 * our_mean + 0.01
    same_output = bool(out_gt) and row["origin_offset_px"] < 1.0 and abs(out_gt[1] / ref_gt[1] - 1) < 0.005
    checks = {"all rows loaded": seen["n_rows"] == len(ours), "output written": bool(out_gt)}
    if case["name"] == "north_up":
        checks.update({"every marker on the raster": seen["markers_on_raster"] == len(ours), "mean error = ours": same_numbers,
                       "residuals = ours (0.1 px)": row["residual_max_diff_px"] < 0.1, "output = GDAL's warp of our GCPs": same_output})
    elif case["name"] == "gcp_only":
        checks.update({"mean error = ours": same_numbers, "residuals = ours (0.1 px)": row["residual_max_diff_px"] < 0.1,
                       "output = GDAL's warp of our GCPs": same_output})
    elif case["name"] == "similarity":
        checks.update({"every marker on the raster": seen["markers_on_raster"] == len(ours), "mean error = ours (Helmert)": same_numbers,
                       "residuals = ours (0.1 px)": row["residual_max_diff_px"] < 0.1,
                       "output = GDAL's affine warp of our GCPs (2 px)": bool(out_gt) and row["origin_offset_px"] < 2.0
                       and abs(out_gt[1] / ref_gt[1] - 1) < 0.005})
    elif case["name"] == "rotated":
        pred_gt, _ = _gdal_warp_of(case["points"], case["raster"], "axis_aligned")
        row["predicted_origin"] = (pred_gt[0], pred_gt[3])
        row["sheared_by_px"] = row.get("origin_offset_px")
        checks.update({"every marker on the raster": seen["markers_on_raster"] == len(ours), "mean error = ours": same_numbers,
                       "output = prediction without rotation terms (QGIS 3.22)":
                           bool(out_gt) and np.hypot(out_gt[0] - pred_gt[0], out_gt[3] - pred_gt[3]) / abs(pred_gt[1]) < 1.0})
    else:  # pixel_file: the symptom
        checks.update({"no marker on the raster": seen["markers_on_raster"] == 0,
                       "mean error ~10x too small": 0.05 * our_mean < their_mean < 0.2 * our_mean,
                       "output off by far": bool(out_gt) and row["origin_offset_px"] > 1000})
    row["checks"] = checks
    return row


def report_markdown(rows: list[dict], qgis_version: str) -> str:
    lines = [f"# .points in the QGIS Georeferencer ({qgis_version})", "",
             "| case | GCPs | markers on raster | mean error QGIS / ours (px) | max residual diff (px) | output origin offset (px) | output pixel (m) | checks |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['name']} | | | | | | | FAILED: {r['error'][:200]} |")
            continue
        px = f"{r['output_pixel'][0]:.3f}" if r.get("output_pixel") else "-"
        checks = "; ".join(f"{'ok' if v else 'FAIL'}: {k}" for k, v in r["checks"].items())
        lines.append(f"| {r['name']} | {r['n_gcps']} | {r['markers_on_raster']} | {r['mean_error_qgis_px']:.3f} / {r['mean_error_ours_px']:.3f} "
                     f"| {r['residual_max_diff_px']:.3f} | {r.get('origin_offset_px', float('nan')):.1f} | {px} | {checks} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "out" / "gui-check"))
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "optical-sar"))
    ap.add_argument("--engine", default="classical", help="engine for the registrations (classical: fast, no weights)")
    args = ap.parse_args()
    if not shutil.which("qgis") or (not os.environ.get("DISPLAY") and not shutil.which("Xvfb")):
        print("gui-check: needs the QGIS desktop and Xvfb: apt-get install -y qgis xvfb openbox imagemagick", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cases = make_cases(Path(args.data), out, args.engine)
    desktop = run_desktop(cases, out)
    if desktop.get("error") and not desktop.get("cases"):
        print(f"gui-check: {desktop['error']}", file=sys.stderr)
        return 1
    seen = {c["name"]: c for c in desktop.get("cases", [])}
    rows = [compare(c, seen.get(c["name"], {"error": "not run"})) for c in cases]
    version = f"QGIS {desktop.get('qgis', '?')}"
    md = report_markdown(rows, version)
    (out / "report.md").write_text(md)
    (out / "report.json").write_text(json.dumps({"qgis": version, "cases": rows, "message_boxes": desktop.get("message_boxes", [])},
                                                indent=1, default=str))
    print(md)
    print(f"screenshots and report in {out}")
    return 0 if all(all(r["checks"].values()) for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
