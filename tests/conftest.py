"""Shared fixtures: paths to the real clips in ../shared/data and tiny model builders.

`make test` runs the suite in one worker process per core (pytest-xdist, a test file per worker
at a time); each worker, and every process its tests start, gets its share of the cores as
OpenMP threads, so the workers never oversubscribe the machine.
"""

from __future__ import annotations

import os
from pathlib import Path


def _share_the_cores_between_workers() -> None:
    """OMP_NUM_THREADS = cores / workers under pytest-xdist, unless the environment set it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, len(os.sched_getaffinity(0)) // workers))


_share_the_cores_between_workers()  # before torch starts its thread pool

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Seconds each file took (setup + calls, one worker) in `make test` on the 2-core AVX2-only EPYC,
# 2026-12-02 (pytest --durations=0). Files are handed out longest first, so the workers end together
# instead of one running a long file alone at the end (longest-processing-time-first scheduling);
# unlisted files (under 2 s) come last, in their order. Only the order depends on these figures.
FILE_SECONDS = {
    "test_pipeline.py": 173, "test_faults.py": 139, "test_training.py": 60, "test_scale_out.py": 56,
    "test_packaging.py": 50, "test_landmarks.py": 44, "test_bad_inputs.py": 39, "test_speech_data.py": 33,
    "test_prepare.py": 33, "test_serve.py": 28, "test_demo.py": 28, "test_repeatability.py": 26,
    "test_samplers.py": 18, "test_synth.py": 16, "test_mouth.py": 13, "test_diffusers_parts.py": 12,
    "test_benchmarks.py": 10, "test_reference_outputs.py": 8, "test_no_pickle.py": 7, "test_env.py": 6,
    "test_envelope.py": 6, "test_two_stage.py": 5, "test_evaluate.py": 4, "test_serve_examples.py": 4,
    "test_resume_and_export.py": 4, "test_recognisers.py": 3, "test_metrics.py": 3, "test_code_structure.py": 2,
    "test_posterior.py": 2, "test_media.py": 2, "test_udiffse_lips.py": 5, "test_input_noise.py": 8,
    "test_noise_tracking.py": 2, "test_inference.py": 20, "test_guidance_distillation.py": 35, "test_mouth_prefetch.py": 26,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: -FILE_SECONDS.get(item.path.name, 0))  # stable: order within a file kept


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """AVDIFF_CACHE (exported score networks, avdiff.inference) in the session's temporary folder,
    never the user's ~/.cache; the processes tests start inherit it."""
    folder = tmp_path_factory.mktemp("avdiff-cache")
    previous = os.environ.get("AVDIFF_CACHE")
    os.environ["AVDIFF_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("AVDIFF_CACHE", None)
    else:
        os.environ["AVDIFF_CACHE"] = previous


@pytest.fixture(scope="session")
def grid_dir() -> Path:
    """../shared/data/grid (six real GRID clips); tests using it skip when it is absent."""
    folder = SHARED_DATA / "grid"
    if not any(folder.glob("*.mpg")):
        pytest.skip(f"real GRID clips not found in {folder} (../shared/data/grid beside the repo)")
    return folder


def decode_audio_16k(path: Path) -> np.ndarray:
    """Mono 16 kHz float32 audio of a media file, decoded with PyAV (MP2 in GRID .mpg)."""
    import av

    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks = []
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float32)


@pytest.fixture(scope="session")
def grid_audio(grid_dir: Path) -> list[np.ndarray]:
    """The six GRID clips' audio at 16 kHz mono."""
    return [decode_audio_16k(path) for path in sorted(grid_dir.glob("*.mpg"))]


TINY_UNET = dict(
    block_out_channels=(8, 16),
    layers_per_block=1,
    attention_levels=(False, True),
    attention_head_dim=8,
    norm_num_groups=4,
    cond_channels=6,
    cond_hidden_channels=8,
)


@pytest.fixture
def tiny_unet():
    """A ~20 k-parameter ScoreUNet with random weights (conditioning is active at init)."""
    from avdiff.models import ScoreUNet

    torch.manual_seed(0)
    return ScoreUNet(**TINY_UNET).eval()


@pytest.fixture(scope="session")
def random_pipeline(tmp_path_factory):
    """Untrained tiny components saved and loaded as a model folder: for lengths, seeds, inputs."""
    from avdiff.pipeline import save_model_folder
    from avdiff.pipeline.pipeline import AVDiffusionPipeline
    from tinymodels import tiny_components

    components = tiny_components()
    folder = save_model_folder(components, tmp_path_factory.mktemp("random") / "model")
    return AVDiffusionPipeline.from_pretrained(folder)


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--runs N`: kill -9 faults per fault-injection loop (tests/test_faults.py); few by default for CI."""
    parser.addoption("--runs", type=int, default=3,
                     help="kill -9 faults per fault-injection loop in tests/test_faults.py (default 3)")


@pytest.fixture(scope="session")
def fault_runs(request: pytest.FixtureRequest) -> int:
    """The `--runs` option: how many faults each fault-injection loop injects."""
    return request.config.getoption("--runs")
