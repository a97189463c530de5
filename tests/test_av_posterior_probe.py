"""The oracle-noise posterior of issue 25's probe (benchmarks/quality/av_posterior_probe.py): its
noise variance is the one it is given, never refitted, and it refuses to run without one."""

from __future__ import annotations

import pytest
import torch

from avdiff.diffusion import EDMFormulation, make_generators
from avdiff.posterior import METHODS, PosteriorProblem, method_entry
from benchmarks.quality.av_posterior_probe import ORACLE_NOISE, OracleNoise, register_oracle_noise

SD = 0.1
FORMULATION = EDMFormulation(sigma_data=SD)


def exact_denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return SD**2 / (SD**2 + sigma.view(-1, 1, 1, 1) ** 2) * x


def test_oracle_noise_keeps_the_given_variance_and_refuses_to_run_without_one():
    generator = torch.Generator().manual_seed(0)
    y = torch.randn(1, 2, 6, 10, generator=generator) * SD
    oracle = torch.rand(1, 6, 8, generator=generator) * SD**2 + 1e-4  # 8 frames: 2 frames of padding follow
    assert ORACLE_NOISE not in METHODS  # importing the probe registers nothing users would see
    register_oracle_noise()
    entry = method_entry(ORACLE_NOISE)
    METHODS.unregister(ORACLE_NOISE)
    problem = PosteriorProblem(y, lambda repeats: exact_denoiser, FORMULATION, make_generators([0]))
    method = entry.method_class(entry.settings({"steps": 4, "num_samples": 1}))
    with pytest.raises(RuntimeError, match="oracle_power"):
        method.run(problem)
    OracleNoise.oracle_power = oracle
    try:
        out = method.run(problem)
    finally:
        OracleNoise.oracle_power = None
    variance = out.noise.variance
    assert torch.allclose(variance[..., :8], oracle)
    assert torch.allclose(variance[..., 8:], torch.full_like(variance[..., 8:], float(oracle.mean()) * 1e-3))
    assert out.sample.shape == y.shape and torch.isfinite(out.sample).all()
