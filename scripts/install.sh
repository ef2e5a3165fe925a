#!/usr/bin/env bash
# Installs everything the project needs on Debian 12: system packages (QGIS, GDAL), then a venv from
# Debian's interpreter (so qgis/osgeo/PyQt5 stay visible) with pinned pip packages.
# Idempotent: apt is skipped when the packages are present, pip when requirements.txt is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
APT_PKGS="python3-qgis python3-gdal gdal-bin python3-venv qgis-providers"

missing=()
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[install] apt: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[install] venv: $VENV (from /usr/bin/python3, with system site-packages)"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

stamp="$VENV/.requirements.sha256"
want=$(cat requirements.txt core/pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[install] pip: requirements.txt + engine package (editable)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e ./core
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" -c "import qgis.core, osgeo.gdal, torch, cv2, promptmid; print('[install] ok: torch', torch.__version__, 'gdal', osgeo.gdal.__version__)"
