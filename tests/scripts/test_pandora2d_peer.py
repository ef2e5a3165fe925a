"""The Pandora2D benchmark peer (scripts/peers/pandora2d_peer.py, venv .venv-pandora2d from `make peers`)."""

import importlib.util
import math
import subprocess

from pathlib import Path

import numpy as np
import pytest

from promptmid.config import EngineConfig
from promptmid.evaluation.protocol import ProtocolConfig
from promptmid.geometry.fit import apply_h
from promptmid.search import georef_search

REPO = Path(__file__).resolve().parents[2]
P2D_PY = REPO / ".venv-pandora2d" / "bin" / "python"
ADAPTER = REPO / "scripts" / "peers" / "pandora2d_peer.py"

from test_bench import run_bench  # noqa: E402 (same folder; one bench runner for both test files)


def _adapter():
    """The adapter module, imported in this venv (Pandora2D itself is only imported when matching)."""
    spec = importlib.util.spec_from_file_location("pandora2d_peer", ADAPTER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("protocol", ["paper", "georef"])
@pytest.mark.parametrize("side", [256, 512])
def test_search_range_covers_the_protocol_warps(protocol, side):
    """Pandora2D only finds disparities inside its range: the one derived from the engine's search must
    cover the largest displacement any of the protocol's warps gives on the work grid."""
    cfg = EngineConfig()
    search = georef_search(cfg.search) if protocol == "georef" else cfg.search
    rng = _adapter().max_disparity(search, side, side)
    pc = ProtocolConfig.named(protocol)
    c = (side - 1) / 2.0
    corners = np.array([[0, 0], [side - 1, 0], [0, side - 1], [side - 1, side - 1]], float)
    worst = 0.0
    for angle in (-pc.max_rotation_deg, pc.max_rotation_deg):
        for scale in pc.scale_range:
            a, s = math.radians(angle), scale
            m = np.array([[s * math.cos(a), s * math.sin(a), 0], [-s * math.sin(a), s * math.cos(a), 0], [0, 0, 1.0]])
            m[:2, 2] = [c, c] - m[:2, :2] @ [c, c]
            m[:2, 2] += pc.max_shift_px  # native px; on a 512 px work grid of a 1024 px pair it is half that
            worst = max(worst, np.abs(apply_h(m, corners) - corners).max())
    assert worst <= rng <= 3 * worst + 50  # covers the warps, without searching the whole image


def test_adapter_recovers_a_known_shift_or_bench_says_how_to_get_it(data_root, tmp_path):
    """With .venv-pandora2d: the adapter's self-check (a real optical image against itself shifted by
    (6.5, -3) px, < 0.5 px) and one pair through the bench. Without it: the bench reports the step."""
    if not P2D_PY.is_file():
        table = run_bench(data_root, tmp_path / "results", "pandora2d", 1)
        assert "pandora2d (paper): skipped (Pandora2D environment missing: run `make peers`)" in table
        return
    image = data_root / "test" / "s1s2_163" / "optical.tif"
    proc = subprocess.run([str(P2D_PY), str(ADAPTER), "--check", "--check-image", str(image)], capture_output=True,
                          text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "recovers a (6.5, -3) px shift" in proc.stdout
    table = run_bench(data_root, tmp_path / "results", "pandora2d", 1)
    assert "| pandora2d | paper | all | 1 |" in table
