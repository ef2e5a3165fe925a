"""Small widget helpers shared by the dialogs."""

from __future__ import annotations

from typing import Mapping, Sequence

from qgis.PyQt.QtWidgets import QComboBox


def keyed_combo(keys: Sequence[str], labels: Mapping[str, str] | None = None, current: str = "") -> QComboBox:
    """A combo box whose items carry ``keys`` as data (labels shown), with ``current`` selected if present."""
    combo = QComboBox()
    for key in keys:
        combo.addItem((labels or {}).get(key, key), key)
    combo.setCurrentIndex(max(0, combo.findData(current)))
    return combo
