"""The front-end of a one-video job runs in a spawned process while the job starts: its crops are
exactly the job's own, its errors reach the job as they would have, and it is started only where
it can help (one video file, dlib)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avdiff.cli import main
from avdiff.errors import InputError
from avdiff.landmarks import LandmarkBackendError
from avdiff.media.writing import write_video
from avdiff.pipeline.inputs import load_mouth_video
from avdiff.commands.common import start_mouth_prefetch
from avdiff.pipeline.mouth_prefetch import MouthPrefetch


@pytest.fixture(scope="module")
def clip(grid_dir: Path) -> Path:
    pytest.importorskip("dlib")  # the offline landmark backend
    return sorted(grid_dir.glob("*.mpg"))[0]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from avdiff.pipeline import save_model_folder
    from tinymodels import tiny_components

    return save_model_folder(tiny_components(), tmp_path_factory.mktemp("model") / "model")


def test_the_prefetched_crops_are_the_jobs_own(clip: Path):
    prefetch = start_mouth_prefetch("generate", ["--video", str(clip), "--landmarks", "dlib", "--steps", "2"])
    assert isinstance(prefetch, MouthPrefetch)
    assert prefetch.take(clip.with_name("other.mpg"), 88) is None  # another file: not this one's
    taken = prefetch.take(clip, 88)
    own = load_mouth_video(clip, 88, "dlib")
    np.testing.assert_array_equal(taken.rois, own.rois)
    np.testing.assert_array_equal(taken.face_ok, own.face_ok)
    np.testing.assert_array_equal(taken.trust, own.trust)
    assert prefetch.take(clip, 88) is None  # taken once
    prefetch.close()


TAKEN_IN_A_FRESH_JOB = """
import sys
from pathlib import Path
from avdiff.pipeline.mouth_prefetch import MouthPrefetch
prefetch = MouthPrefetch(Path(sys.argv[1]), "dlib", None)
video = prefetch.take(sys.argv[1], 88)
print(video.rois.shape[0], sorted(name for name in ("scipy.ndimage", "avdiff.mouth.extract", "dlib") if name in sys.modules))
prefetch.close()
"""


def test_taking_the_crops_loads_nothing_of_the_front_end_into_the_job(clip: Path):
    """The crops cross as plain arrays: the job does not import the front-end's modules (scipy's
    took 0.27 s of the critical path) to read them."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", TAKEN_IN_A_FRESH_JOB, str(clip)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["75", "[]"]


def test_it_starts_only_for_one_video_file_read_with_dlib(clip: Path, tmp_path: Path, capsys):
    crops = tmp_path / "crops.npy"
    np.save(crops, np.zeros((5, 96, 96), np.uint8))
    for command, argv in (("generate", ["--video", str(crops)]), ("generate", ["--video", str(clip.parent)]),
                          ("generate", ["--video", str(tmp_path / "missing.mp4")]),
                          ("generate", ["--video", str(clip), "--landmarks", "face-alignment"]),
                          ("prepare", ["--video", str(clip)]), ("enhance", ["--noisy", str(clip)]),
                          ("generate", ["--video", str(clip), "--landmarks", "nonsense"]), ("generate", ["--video"])):
        assert start_mouth_prefetch(command, argv) is None, (command, argv)
    assert capsys.readouterr().err == ""  # a bad command line is the command's parser's to report
    extraction = start_mouth_prefetch("extract", ["--mixture", "mix.wav", "--video", str(clip), "--landmarks", "dlib"])
    assert isinstance(extraction, MouthPrefetch)  # the target's video; the interferer's is read by the job
    extraction.close()


def test_errors_reach_the_job_as_they_would_have(tmp_path: Path, clip: Path):
    faceless = write_video(tmp_path / "no face.mp4",
                           np.random.default_rng(3).integers(0, 256, (20, 96, 128, 3), dtype=np.uint8))
    prefetch = start_mouth_prefetch("enhance", ["--noisy", "x.wav", "--video", str(faceless), "--landmarks", "dlib"])
    assert prefetch.check_backend()
    with pytest.raises(InputError) as prefetched:
        prefetch.take(faceless, 88)
    with pytest.raises(InputError) as own:
        load_mouth_video(faceless, 88, "dlib")
    assert str(prefetched.value) == str(own.value) and "no face" in str(own.value)

    bad_weights = tmp_path / "not a dlib model.dat"
    bad_weights.write_bytes(b"nothing")
    prefetch = start_mouth_prefetch("generate", ["--video", str(clip), "--landmarks", "dlib",
                                                 "--landmark-weights", str(bad_weights)])
    with pytest.raises(LandmarkBackendError, match="not a dlib 68-point shape predictor"):
        prefetch.check_backend()
    prefetch.close()


def test_a_dead_prefetch_process_leaves_the_work_to_the_job(clip: Path):
    prefetch = start_mouth_prefetch("generate", ["--video", str(clip), "--landmarks", "dlib"])
    prefetch._process.kill()
    assert prefetch.take(clip, 88) is None


def test_the_cli_uses_the_prefetched_crops(clip: Path, model: Path, tmp_path: Path, monkeypatch, capsys):
    """`avdiff generate` on one video file makes no crops itself, and writes what the pipeline gives."""
    from avdiff.pipeline import AVDiffusionPipeline
    from avdiff.media import load_audio

    expected = AVDiffusionPipeline.from_pretrained(model, backend="torch").generate(clip, landmarks="dlib", seed=3)

    def refuse(*args, **kwargs):
        raise AssertionError("the job made the crops itself")

    monkeypatch.setattr("avdiff.pipeline.lip_front.load_mouth_video", refuse)
    out = tmp_path / "out.wav"
    code = main(["generate", "--video", str(clip), "--model", str(model), "--landmarks", "dlib", "--seed", "3",
                 "--backend", "torch", "--output", str(out)])
    assert code == 0, capsys.readouterr()
    written = load_audio(out)
    np.testing.assert_allclose(written, expected.audio[0], atol=2 / 32768)  # 16-bit PCM


def test_torch_hubs_folder_is_found_without_loading_torch(tmp_path: Path):
    """`--landmarks auto` looks for face-alignment's weights before the job's front-end starts: it
    must find torch hub's folder as torch does, without the 2.5 s of importing torch."""
    import os
    import subprocess
    import sys

    probe = ("import sys\nfrom avdiff.landmarks.hub import default_weights_dir\nfound = default_weights_dir()\n"
             "loaded = 'torch' in sys.modules\nimport torch\nprint(found, loaded, found == default_weights_dir(), "
             "found.parent == __import__('pathlib').Path(torch.hub.get_dir()))")
    for variable in ("TORCH_HOME", "XDG_CACHE_HOME"):
        environment = {key: value for key, value in os.environ.items() if key not in ("TORCH_HOME", "XDG_CACHE_HOME")}
        environment[variable] = str(tmp_path / variable)
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                             env=environment).stdout.split()
        assert out[0].startswith(str(tmp_path / variable)) and out[1:] == ["False", "True", "True"], out
