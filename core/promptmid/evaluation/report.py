"""Evaluation tables: Markdown for humans, CSV per pair for analysis."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, fields

from .protocol import PairResult, Summary


def _fmt(v: float, digits: int = 2) -> str:
    return "inf" if isinstance(v, float) and math.isinf(v) else ("n/a" if isinstance(v, float) and math.isnan(v) else f"{v:.{digits}f}")


def markdown_table(summaries: list[Summary]) -> str:
    head = ("| engine | protocol | dataset | pairs | SR (%) | NCM | RMSE (px) | reg. err. median (px) | reg. err. p90 (px) "
            "| claimed | false accepts | s / pair |")
    rows = [head, "|" + "---|" * 12]
    for s in summaries:
        rows.append(f"| {s.engine} | {s.protocol} | {s.dataset} | {s.n_pairs} | {_fmt(s.sr, 1)} | {_fmt(s.ncm, 1)} | {_fmt(s.rmse)} | "
                    f"{_fmt(s.reg_err_median_px)} | {_fmt(s.reg_err_p90_px)} | {s.n_claimed} | {s.n_false_accept} | "
                    f"{_fmt(s.sec_per_pair)} |")
    return "\n".join(rows)


def write_csv(path: str, pairs: list[PairResult]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[f.name for f in fields(PairResult)])
        w.writeheader()
        for p in pairs:
            w.writerow(asdict(p))
