"""Atomic output files: write to a temporary sibling, rename on success, remove on failure."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

from ..errors import OutputError


def ensure_writable_dir(path: str) -> str:
    """Create the output folder if needed and check we can write in it (clear message, not EACCES)."""
    try:
        os.makedirs(path, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".promptmid-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise OutputError(f"Output folder {path} is not writable ({exc.strerror or exc}).") from None
    return path


@contextlib.contextmanager
def atomic_path(final_path: str) -> Iterator[str]:
    """Yield a temporary path beside ``final_path``; on success it replaces ``final_path`` in one rename."""
    directory = os.path.dirname(os.path.abspath(final_path))
    base, ext = os.path.splitext(os.path.basename(final_path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".part{ext}", dir=directory)
    os.close(fd)
    os.remove(tmp)  # writers (GDAL/OGR) want to create the file themselves
    try:
        yield tmp
        os.replace(tmp, final_path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise OutputError(f"Cannot write {final_path} ({exc.strerror or exc}).") from None
    except RuntimeError as exc:  # GDAL/OGR (with exceptions on) report write failures such as a full disk so
        _remove_quietly(tmp)
        raise OutputError(f"Cannot write {final_path} ({str(exc).strip()}).") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: str) -> None:
    for p in (path, path + ".aux.xml"):
        with contextlib.suppress(OSError):
            os.remove(p)
