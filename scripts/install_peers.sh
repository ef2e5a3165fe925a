#!/usr/bin/env bash
# Benchmark-only environments for the AROSICS and Pandora2D peers (`make peers`; `make bench` runs it first).
# A venv from Debian's interpreter (GDAL 3.6 bindings) that also sees the project venv (engine, torch,
# OpenCV) through a .pth line, so the peer runs through the same evaluation harness as our engines.
# Kept apart from .venv: AROSICS's GDAL>=3.8 pin is overridden here, never in the plugin's environment.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PEERS=${PEERS_VENV:-.venv-peers}
PEERS_NODEPS="arosics==1.10.2 geoarray==0.17.2 py_tools_ds==0.21.1"
[ -x "$VENV/bin/python" ] || { echo "[peers] run 'make install' first ($VENV missing)" >&2; exit 1; }
if [ ! -x "$PEERS/bin/python" ]; then
  echo "[peers] venv: $PEERS"
  /usr/bin/python3 -m venv --system-site-packages "$PEERS"
fi
main_sp=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
peers_sp=$("$PEERS/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# addsitedir (not a bare path) so the project venv's own .pth files (the editable engine) are honoured.
echo "import site; site.addsitedir('$(realpath "$main_sp")')" > "$peers_sp/promptmid_project_venv.pth"
stamp="$PEERS/.requirements.sha256"
want=$( (cat requirements-peers.txt; echo "$PEERS_NODEPS") | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[peers] pip: requirements-peers.txt + $PEERS_NODEPS (no deps)"
  "$PEERS/bin/python" -m pip install -q --disable-pip-version-check -r requirements-peers.txt
  # shellcheck disable=SC2086
  "$PEERS/bin/python" -m pip install -q --disable-pip-version-check --no-deps $PEERS_NODEPS
  echo "$want" > "$stamp"
fi
"$PEERS/bin/python" scripts/peers/arosics_peer.py --check

# CNES Pandora2D (scripts/peers/pandora2d_peer.py): a second venv, built the same way, because its rasterio
# wheel bundles its own GDAL (3.10) and it wants a newer scipy/pandas than the AROSICS pins; numpy stays at
# the project's 1.26.4 (requirements-pandora2d.txt). Never in the plugin's environment either.
P2D=${PANDORA2D_VENV:-.venv-pandora2d}
if [ ! -x "$P2D/bin/python" ]; then
  echo "[peers] venv: $P2D"
  /usr/bin/python3 -m venv --system-site-packages "$P2D"
fi
p2d_sp=$("$P2D/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
echo "import site; site.addsitedir('$(realpath "$main_sp")')" > "$p2d_sp/promptmid_project_venv.pth"
stamp="$P2D/.requirements.sha256"
want=$(sha256sum requirements-pandora2d.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[peers] pip: requirements-pandora2d.txt"
  "$P2D/bin/python" -m pip install -q --disable-pip-version-check -r requirements-pandora2d.txt
  echo "$want" > "$stamp"
fi
"$P2D/bin/python" scripts/peers/pandora2d_peer.py --check
