"""The score network's default dtype: bfloat16 where the hardware does it natively, else float32."""

from __future__ import annotations

import builtins
import io
import os

import torch

from avdiff import cpu
from avdiff.pipeline.pipeline import default_dtype


def fake_cpuinfo(monkeypatch, flags: str) -> None:
    real_open = builtins.open

    def fake_open(path, *args, **kwargs):
        if path == "/proc/cpuinfo":
            return io.StringIO(f"processor\t: 0\nflags\t\t: {flags}\n")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)


def test_bfloat16_only_on_cpus_that_do_it_natively(monkeypatch):
    fake_cpuinfo(monkeypatch, "fpu sse2 avx2 avx512f avx512_bf16")
    assert cpu.cpu_has_native_bf16() and default_dtype(torch.device("cpu")) == torch.bfloat16
    fake_cpuinfo(monkeypatch, "fpu sse2 avx2 avx512f amx_tile amx_bf16")
    assert cpu.cpu_has_native_bf16()
    fake_cpuinfo(monkeypatch, "fpu sse2 avx2 avx512f avx512_bf16x")  # a flag must match whole
    assert not cpu.cpu_has_native_bf16() and default_dtype(torch.device("cpu")) == torch.float32
    assert default_dtype(torch.device("cuda")) == torch.bfloat16


def test_children_choose_their_own_threads(monkeypatch):
    """A default avdiff set at import is not passed on as if the user had chosen it; the user's is."""
    monkeypatch.setenv("OMP_NUM_THREADS", "restored after the test")  # so that delenv's undo restores it
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setattr(cpu, "_SET_HERE", set())
    monkeypatch.setattr(cpu, "free_cores", lambda: 1)
    cpu.apply_cpu_defaults()

    assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    child = cpu.environment_without_defaults()
    assert "OMP_NUM_THREADS" not in child and child["OMP_WAIT_POLICY"] == "ACTIVE"
    assert child["PATH"] == os.environ["PATH"]
