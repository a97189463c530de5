"""The Gaussian of a lip encoder's training mouth crops (issue 25, visual reliability): it finds the
talker's mouth when a patch covers most of a clip, leaves clips unlike its crops to the
clip-relative test, and travels with the model folder."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from avdiff.errors import InputError
from avdiff.mouth.mouth_model import FILE_NAME, MouthModel, fit_mouth_model
from avdiff.mouth.reliability import USABLE_SCORE, frame_reliability
from avdiff.pipeline.inputs import MouthVideo
from test_reliability import talking_mouth

COVERED = 56  # of 75 frames: three quarters


def covered_mouth(size: int = 48) -> np.ndarray:
    """The talking mouth with a dark patch (a hand) over it on the first three quarters of its frames."""
    crops = talking_mouth(size=size)
    low, high = int(0.2 * size), int(0.8 * size)
    crops[:COVERED, low:high, low:high] = 25
    return crops


@pytest.fixture(scope="module")
def mouth_model() -> MouthModel:
    return fit_mouth_model(talking_mouth(seed=seed) for seed in range(1, 16))  # 1125 frames


def test_a_mouth_covered_on_most_frames_is_found_by_the_model(mouth_model: MouthModel) -> None:
    crops, face_ok = covered_mouth(), np.ones(75, bool)
    alone = frame_reliability(crops, face_ok)
    assert alone[COVERED:].max() < USABLE_SCORE  # the patch became the clip's typical crop: the mouth is the outlier
    score = frame_reliability(crops, face_ok, mouth_model=mouth_model)
    assert score[:COVERED].max() < USABLE_SCORE and score[COVERED:].min() == 1.0
    assert frame_reliability(talking_mouth(), face_ok, mouth_model=mouth_model).min() == 1.0


def test_a_clip_unlike_the_training_crops_is_left_to_the_clip_relative_test(mouth_model: MouthModel) -> None:
    inverted = 255 - covered_mouth()  # light lips on dark skin: no crop the model was fitted on looks like it
    face_ok = np.ones(75, bool)
    assert mouth_model.typical_frames(inverted, face_ok) is None
    np.testing.assert_array_equal(frame_reliability(inverted, face_ok, mouth_model=mouth_model),
                                  frame_reliability(inverted, face_ok))


def test_too_few_frames_or_crops_that_do_not_vary_are_a_clear_error() -> None:
    with pytest.raises(InputError, match="at least 1024 frames"):
        fit_mouth_model([talking_mouth()])
    with pytest.raises(InputError, match="do not vary"):
        fit_mouth_model([np.full((1100, 32, 32), 128, np.uint8)])


def test_the_model_travels_with_the_folder_and_scores_the_lips(tmp_path) -> None:
    from avdiff.pipeline import save_model_folder
    from avdiff.pipeline.pipeline import AVDiffusionPipeline
    from tinymodels import tiny_components

    model = fit_mouth_model(talking_mouth(size=32, seed=seed) for seed in range(1, 16))
    folder = save_model_folder(dataclasses.replace(tiny_components(), mouth_model=model), tmp_path / "model")
    assert (folder / "lip_encoder" / FILE_NAME).is_file()
    pipeline = AVDiffusionPipeline.from_pretrained(folder)
    np.testing.assert_allclose(pipeline.mouth_model.whitening, model.whitening, rtol=1e-5)
    trust = pipeline.load_video(MouthVideo(covered_mouth(size=32), np.ones(75, bool))).trust
    assert trust[:COVERED].max() < USABLE_SCORE and trust[COVERED:].min() == 1.0
    (folder / "lip_encoder" / FILE_NAME).write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="not a mouth model"):
        AVDiffusionPipeline.from_pretrained(folder)


def test_the_command_adds_a_model_to_a_folder_made_without_one(tmp_path) -> None:
    from avdiff.cli import main
    from avdiff.pipeline import save_model_folder
    from tinymodels import tiny_components

    folder = save_model_folder(tiny_components(), tmp_path / "model")
    manifest = tmp_path / "train.jsonl"
    lines = []
    for seed in range(1, 16):
        np.save(tmp_path / f"c{seed}.npy", talking_mouth(size=40, seed=seed))
        lines.append(json.dumps({"id": f"c{seed}", "audio": f"c{seed}.wav", "video": f"c{seed}.npy", "num_frames": 75,
                                 "duration": 3.0, "speaker": "s"}))
    manifest.write_text("\n".join(lines) + "\n")
    assert main(["mouth-model", "--model", str(folder), "--manifest", str(manifest)]) == 0
    written = MouthModel.load(folder / "lip_encoder" / FILE_NAME)
    assert written.typical_frames(covered_mouth(size=32), np.ones(75, bool))[:COVERED].max() < USABLE_SCORE


def test_the_probe_counts_missed_and_falsely_flagged_frames(mouth_model: MouthModel) -> None:
    from types import SimpleNamespace

    from benchmarks.quality.mouth_model_probe import clip_row

    video = MouthVideo(talking_mouth(), np.ones(75, bool))
    bad = MouthVideo(covered_mouth(), np.ones(75, bool))
    row = clip_row(SimpleNamespace(mouth_model=mouth_model, crop_size=48), video, bad, "occluded", 0.75)
    assert row["corrupted"] == pytest.approx(COVERED / 75)
    assert (row["missed_alone"], row["false_alarms_alone"]) == (1.0, 1.0)  # the patch taken for the mouth, and back
    assert (row["missed_model"], row["false_alarms_model"]) == (0.0, 0.0)
