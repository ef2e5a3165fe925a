"""Build the installable plugin zip: dist/promptmid_qgis-<version>.zip.

Layout inside the zip (one top-level folder, as QGIS's "Install from ZIP" expects):
    promptmid_qgis/            plugin code + metadata.txt
    promptmid_qgis/engine/     the engine package (core/promptmid), run by the worker process
    promptmid_qgis/resources/  icon, shipped model + model card, land-cover legends
    promptmid_qgis/requirements-engine.txt  what the set-up dialog installs
"""

from __future__ import annotations

import configparser
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP_PARTS = {"__pycache__", ".pytest_cache"}
TEST_ONLY = ("pytest", "hypothesis")


def _files(root: Path):
    for p in sorted(root.rglob("*")):
        if p.is_file() and not SKIP_PARTS.intersection(p.parts) and p.suffix not in (".pyc",) and ".train-state" not in p.name:
            yield p


def build(out_dir: Path = REPO / "dist") -> Path:
    meta = configparser.ConfigParser()
    meta.read(REPO / "metadata.txt")
    version = meta["general"]["version"]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"promptmid_qgis-{version}.zip"
    model = REPO / "resources" / "models" / "promptmid-dense.safetensors"
    if not model.is_file():
        sys.exit(f"package: the shipped model {model} is missing (run `make train-default`).")
    req = [l for l in (REPO / "requirements.txt").read_text().splitlines() if l and not l.startswith(TEST_ONLY)]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in _files(REPO / "promptmid_qgis"):
            zf.write(p, Path("promptmid_qgis") / p.relative_to(REPO / "promptmid_qgis"))
        for p in _files(REPO / "core" / "promptmid"):
            zf.write(p, Path("promptmid_qgis") / "engine" / p.relative_to(REPO / "core"))
        for p in _files(REPO / "resources"):
            zf.write(p, Path("promptmid_qgis") / p.relative_to(REPO))
        zf.write(REPO / "metadata.txt", "promptmid_qgis/metadata.txt")
        zf.write(REPO / "LICENSE", "promptmid_qgis/LICENSE")
        zf.writestr("promptmid_qgis/requirements-engine.txt", "\n".join(req) + "\n")
    return target


if __name__ == "__main__":
    print(build())
