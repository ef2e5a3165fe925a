"""Per-process set-up: thread pools sized as asked, glibc told to keep freed blocks."""

import ctypes
import platform

import numpy as np
import pytest

from promptmid import runtime


def test_set_threads_sizes_every_loaded_openblas():
    np.dot(np.ones((64, 64)), np.ones((64, 64)))  # numpy's OpenBLAS is loaded and has started its pool
    before = runtime.openblas_threads()
    assert before, "numpy's OpenBLAS not found among the loaded libraries"
    try:
        assert runtime.set_threads(1) == 1
        after = runtime.openblas_threads()
        assert len(after) >= len(before) and set(after) == {1}
        import torch

        assert torch.get_num_threads() == 1
    finally:
        runtime.set_threads(max(before))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_serves_large_blocks_from_the_heap():
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.mallinfo2.restype = _MallInfo2

    def mapped_blocks_while_holding(size: int) -> int:
        block = libc.malloc(size)
        try:
            return libc.mallinfo2().hblks
        finally:
            libc.free(ctypes.c_void_p(block))

    # 64 MB is above glibc's largest default mmap threshold (32 MB): mapped on its own unless told otherwise.
    assert runtime.keep_freed_memory()
    base = libc.mallinfo2().hblks
    assert mapped_blocks_while_holding(64 << 20) == base
