"""`make bench`: every engine on the same pairs under both protocols (paper, georef), one table.

Each engine runs `promptmid evaluate` in its own process (so its peak memory can be measured with
wait4, and one engine's caches cannot help another). Writes bench/results/{bench.md, bench.csv,
<engine>.<protocol>.json, bench.png}. Engines whose weights are missing are reported as skipped, with the
reason. One more row, ``default (busy)``, runs the default engine while another process keeps a core
busy, as on a desktop where QGIS or a second job is working.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METRICS = ("sr", "ncm", "rmse", "reg_err_median_px", "reg_err_p90_px", "n_claimed", "n_false_accept", "sec_per_pair")
PROTOCOLS = ("paper", "georef")
BUSY = "default (busy)"  # the default engine with the other core kept busy


PEERS_PY = REPO / ".venv-peers" / "bin" / "python"
PEERS = {"arosics-global": "global", "arosics-local": "local"}  # engine name -> scripts/peers/arosics_peer.py --mode
PANDORA2D_PY = REPO / ".venv-pandora2d" / "bin" / "python"  # CNES Pandora2D has its own venv (`make peers`)


def engine_command(engine: str, pairs: str, js: Path, seed: int, protocol: str = "paper") -> list[str] | str:
    """The command that evaluates one engine or peer, or the reason it cannot run here."""
    if engine in PEERS:
        if not PEERS_PY.is_file():
            return "peers environment missing: run `make peers`"
        return [str(PEERS_PY), str(REPO / "scripts" / "peers" / "arosics_peer.py"), pairs, "--mode", PEERS[engine],
                "--seed", str(seed), "--protocol", protocol, "--json", str(js)]
    if engine == "pandora2d":
        if not PANDORA2D_PY.is_file():
            return "Pandora2D environment missing: run `make peers`"
        return [str(PANDORA2D_PY), str(REPO / "scripts" / "peers" / "pandora2d_peer.py"), pairs, "--seed", str(seed),
                "--protocol", protocol, "--json", str(js)]
    name = "default" if engine == BUSY else engine
    return [sys.executable, "-m", "promptmid.cli", "evaluate", pairs, "--engine", name, "--seed", str(seed),
            "--protocol", protocol, "--json", str(js), "-q"]


class busy_core:
    """Keeps one core busy (a spinning child process) for the duration of a ``with`` block."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def run_measured(cmd: list[str], log: Path) -> tuple[int, float, float]:
    """Run ``cmd`` with its output in ``log`` (a file, not a pipe: a chatty child cannot fill a pipe and
    stall wait4); returns (exit code, wall seconds, peak resident MB of the child)."""
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - t0, usage.ru_maxrss / 1024.0


def run_engine(engine: str, pairs: str, out: Path, seed: int, limit: int | None, reuse: bool = False,
               protocol: str = "paper") -> dict:
    stem = f"{engine.replace(' ', '_').replace('(', '').replace(')', '')}.{protocol}"
    js, extra = out / f"{stem}.json", out / f"{stem}.bench.json"
    if reuse and js.is_file() and extra.is_file():
        return {**json.loads(js.read_text()), **json.loads(extra.read_text()), "engine": engine}
    cmd = engine_command(engine, pairs, js, seed, protocol)
    if isinstance(cmd, str):
        return {"engine": engine, "protocol": protocol, "skipped": cmd}
    if limit:
        cmd += ["--limit", str(limit)]
    log = out / f"{stem}.log"
    if engine == BUSY:
        with busy_core():
            code, wall, peak_mb = run_measured(cmd, log)
    else:
        code, wall, peak_mb = run_measured(cmd, log)
    if code != 0:
        return {"engine": engine, "protocol": protocol, "skipped": (log.read_text().strip().splitlines() or [f"exit {code}"])[-1]}
    measured = {"peak_mb": peak_mb, "wall_s": wall}
    extra.write_text(json.dumps(measured))
    return {**json.loads(js.read_text()), **measured, "engine": engine}


def fmt(v, d=2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return f"{v:.{d}f}"


def rows_of(results: list[dict]) -> list[dict]:
    rows = []
    for r in results:
        if "skipped" in r:
            continue
        sift = next((x for x in results if x["engine"] == "sift" and x.get("protocol") == r.get("protocol") and "skipped" not in x), None)
        for ds, s in list(r["datasets"].items()) + [("all", r)]:
            row = {"engine": r["engine"], "protocol": r.get("protocol", "paper"), "dataset": ds, "pairs": s["n_pairs"],
                   **{m: s.get(m) for m in METRICS}, "peak_mb": r["peak_mb"]}
            base = (sift["datasets"].get(ds) if ds != "all" else sift) if sift else None
            row["sr_vs_sift"] = (s["sr"] / base["sr"]) if base and base["sr"] else None
            row["time_vs_sift"] = (s["sec_per_pair"] / base["sec_per_pair"]) if base else None
            rows.append(row)
    return rows


def _inf(v):
    """Registration errors: null in the JSON means infinite (failed pairs count as infinite error)."""
    return math.inf if v is None else v


def failure_notes(results: list[dict]) -> list[str]:
    """Per engine, why pairs failed outright (the harness records each pair's error message)."""
    notes = []
    for r in results:
        errors = [p["error"] for p in r.get("pairs", []) if p.get("error")]
        if errors:
            # Group by message with the numbers taken out ("3 of 81 grid points" -> "# of # grid points").
            kinds = Counter(re.sub(r"\d+(\.\d+)?", "#", e)[:110] for e in errors)
            top = "; ".join(f"{k} ({n})" for k, n in kinds.most_common(3))
            notes.append(f"{r['engine']} ({r.get('protocol', 'paper')}): {len(errors)} of {len(r['pairs'])} pairs gave no transform: {top}")
    return notes


def markdown(rows: list[dict], skipped: list[dict], notes: list[str] = ()) -> str:
    head = ("| engine | protocol | dataset | pairs | SR (%) | NCM | RMSE (px) | reg. err. median (px) | reg. err. p90 (px) "
            "| claimed | false accepts | s / pair | peak MB | SR / SIFT | time / SIFT |")
    out = [head, "|" + "---|" * 15]
    for r in rows:
        out.append(f"| {r['engine']} | {r['protocol']} | {r['dataset']} | {r['pairs']} | {fmt(r['sr'], 1)} | {fmt(r['ncm'], 1)} | {fmt(r['rmse'])} | "
                   f"{fmt(_inf(r['reg_err_median_px']))} | {fmt(_inf(r['reg_err_p90_px']))} | {r['n_claimed']} | {r['n_false_accept']} | "
                   f"{fmt(r['sec_per_pair'])} | {fmt(r['peak_mb'], 0)} | "
                   f"{fmt(r['sr_vs_sift'], 1) if r['sr_vs_sift'] is not None else 'n/a'} | {fmt(r['time_vs_sift'], 1) if r['time_vs_sift'] is not None else 'n/a'} |")
    for s in skipped:
        out.append(f"\n{s['engine']} ({s.get('protocol', 'paper')}): skipped ({s['skipped']})")
    for n in notes:
        out.append(f"\n{n}")
    return "\n".join(out)


def sensor_markdown(results: list[dict]) -> str:
    """Per SAR sensor, for each engine that gives a verdict (ours): fits within 3 px whatever the verdict,
    claims, right claims and false accepts. The stated truth is good to about a pixel on some sensors and
    several px off on others (README, truth check), which the `all` rows mix."""
    from promptmid.evaluation.protocol import sensor_of

    out = ["| engine | protocol | sensor | pairs | fits within 3 px | claimed | claimed within 3 px | false accepts |",
           "|" + "---|" * 8]
    for r in results:
        pairs = r.get("pairs", [])
        if "skipped" in r or not any(p.get("evidence") for p in pairs):
            continue  # a peer without a verdict claims every fit: its table row says enough
        for sensor in sorted({sensor_of(p["pair_id"]) for p in pairs}):
            ps = [p for p in pairs if sensor_of(p["pair_id"]) == sensor]
            fit = [_inf(p.get("fit_err_px")) for p in ps]
            claimed = [e for p, e in zip(ps, fit) if p.get("verdict") == "registered"]
            out.append(f"| {r['engine']} | {r.get('protocol', 'paper')} | {sensor} | {len(ps)} | {sum(e <= 3 for e in fit)} | "
                       f"{len(claimed)} | {sum(e <= 3 for e in claimed)} | {sum(not e <= 5 for e in claimed)} |")
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = sorted({r["dataset"] for r in rows})
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    w = 0.8 / max(len(engines), 1)
    for i, e in enumerate(engines):
        sr = [next((r["sr"] for r in rows if r["engine"] == e and r["dataset"] == d), 0) for d in sets]
        axes[0].bar([j + i * w for j in range(len(sets))], sr, w, label=e)
        t = [next((r["sec_per_pair"] for r in rows if r["engine"] == e and r["dataset"] == d), 0) for d in sets]
        axes[1].bar([j + i * w for j in range(len(sets))], t, w, label=e)
    for ax, title in zip(axes, ("success rate (%)", "seconds per pair (2 CPU cores)")):
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(sets))], sets)
        ax.set_title(title)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs")
    ap.add_argument("--engines", default=f"sift,arosics-global,arosics-local,pandora2d,classical,area,lite,default,promptmid,{BUSY}")
    ap.add_argument("--protocols", default=",".join(PROTOCOLS))
    ap.add_argument("--out", default=str(REPO / "bench" / "results"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--reuse", action="store_true", help="reuse engines already measured in --out (same pairs and seed)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for protocol in args.protocols.split(","):
        for engine in args.engines.split(","):
            if engine == BUSY and protocol != "paper":
                continue  # one busy-core row is enough to show the effect of load
            print(f"[bench] {engine} ({protocol}) ...", flush=True)
            results.append(run_engine(engine, args.pairs, out, args.seed, args.limit, args.reuse, protocol))
    rows = rows_of(results)
    skipped = [r for r in results if "skipped" in r]
    table = markdown(rows, skipped, failure_notes([r for r in results if 'skipped' not in r]))
    by_sensor = sensor_markdown([r for r in results if "skipped" not in r])
    (out / "bench.md").write_text(table + "\n\nPer SAR sensor (engines with a verdict):\n\n" + by_sensor + "\n")
    with open(out / "bench.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["engine"])
        wr.writeheader()
        wr.writerows(rows)
    if rows:
        plot(rows, out / "bench.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
