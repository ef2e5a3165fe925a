#!/usr/bin/env bash
# Benchmark-only environment for the AROSICS peer (`make peers`; `make bench` runs it first).
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
