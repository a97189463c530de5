"""torch.compile of the score network (`avdiff.inference.compiled`): modes, the CUDA-graph
wrapper, and a score UNet that compiles as one graph with the eager output."""

import pytest
import torch

from avdiff.inference.compiled import COMPILE_MODES, CudaGraphNetwork, compile_network, default_compile_mode


def test_default_mode_is_cuda_graphs_on_gpus_and_torchs_default_on_cpus():
    assert default_compile_mode("cuda") == "reduce-overhead"
    assert default_compile_mode("cpu") == "default"
    assert set(COMPILE_MODES) >= {"default", "reduce-overhead"}


def test_unknown_mode_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="reduce-overhead"):
        compile_network(torch.nn.Linear(2, 2), "cpu", "fastest")


def test_cpu_networks_are_never_wrapped_for_cuda_graphs():
    network = compile_network(torch.nn.Linear(2, 2), "cpu", "reduce-overhead")
    assert not isinstance(network, CudaGraphNetwork)


def test_cuda_graph_wrapper_returns_a_copy_and_marks_a_step(monkeypatch):
    steps = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: steps.append(1))
    inner = torch.nn.Identity()
    wrapped = CudaGraphNetwork(inner)
    x = torch.ones(3)
    out = wrapped(x)
    assert steps == [1] and torch.equal(out, x) and out.data_ptr() != x.data_ptr()


def test_score_network_is_one_graph_with_the_same_output():
    """No graph break anywhere in the score UNet (envelope picture, padding, FiLM, attention): a
    break would split the CUDA graph a GPU replays per call."""
    from avdiff.models import ScoreUNet

    torch.manual_seed(0)
    unet = ScoreUNet(block_out_channels=(8, 16), attention_levels=(False, True), norm_num_groups=4,
                     attention_head_dim=8, cond_channels=8, cond_hidden_channels=8, cond_envelope_bands=4,
                     cond_spectral_channels=0).eval()
    x, noise = torch.randn(1, 2, 30, 21), torch.rand(1)
    cond, mask = torch.randn(1, 8, 21), torch.ones(1, 21, dtype=torch.bool)
    mask[0, 15:] = False
    with torch.no_grad():
        eager = unet(x, noise, cond=cond, cond_mask=mask)
        graphed = torch.compile(unet, backend="eager", fullgraph=True)(x, noise, cond=cond, cond_mask=mask)
    assert graphed.shape == x.shape
    assert torch.allclose(graphed, eager, atol=1e-5)
