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

# The files that take longest (20-110 s each on 2 cores), longest first. They are handed out first
# so that the workers end together instead of one running a long file alone at the end (the suite
# took 226 s instead of 245 s here). The rest keep their order.
LONGEST_FILES = ("test_pipeline.py", "test_faults.py", "test_scale_out.py", "test_demo.py", "test_packaging.py",
                 "test_training.py", "test_prepare.py", "test_bad_inputs.py", "test_speech_data.py",
                 "test_landmarks.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file kept


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
