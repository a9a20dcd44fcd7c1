"""How ``patrolkg serve`` runs its process: the malloc arena cap."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from patrolkg.web.server import MALLOC_ARENAS, limit_malloc_arenas

GLIBC = platform.libc_ver()[0] == "glibc"

# In a child process: the cap, then as many threads as a busy server has, each
# allocating; prints how many arenas glibc made (malloc_info lists one <heap> each).
_ARENAS_SCRIPT = """
import ctypes, ctypes.util, os, sys, threading
from patrolkg.web.server import limit_malloc_arenas
if sys.argv[1] == "capped":
    limit_malloc_arenas()
barrier = threading.Barrier(16)
def work():
    barrier.wait()
    for _ in range(2000):
        bytearray(4096)
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.open_memstream.restype = ctypes.c_void_p
buffer, size = ctypes.c_char_p(), ctypes.c_size_t()
stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
libc.malloc_info(0, ctypes.c_void_p(stream))
libc.fclose(ctypes.c_void_p(stream))
print(buffer.value.decode().count("<heap nr="))
"""


def _arenas(mode: str, env: dict[str, str] | None = None) -> int:
    result = subprocess.run([sys.executable, "-c", _ARENAS_SCRIPT, mode], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


@pytest.mark.skipif(not GLIBC, reason="the arena cap is glibc's")
def test_the_cap_keeps_threads_to_two_malloc_arenas() -> None:
    assert _arenas("capped") <= MALLOC_ARENAS < _arenas("default")


@pytest.mark.skipif(not GLIBC, reason="the arena cap is glibc's")
def test_malloc_arena_max_in_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
