"""Audio-only speech: prepare layouts, manifests without video, splits, mixed training, a speech prior.

Tests on real recordings read ../shared/data/speech and skip with a message when it is absent.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_training import REPO_ROOT, TINY_OVERRIDES, child_env
from tinycorpus import make_tiny_corpus, tone_for_brightness

from avdiff.cli import main
from avdiff.config import AVDiffConfig, load_config
from avdiff.data.crops import AVCropDataset, collate_crops
from avdiff.data.manifest import read_manifest, write_manifest
from avdiff.data.sampler import ShardedEpochSampler
from avdiff.data.splits import split_manifest
from avdiff.errors import InputError
from avdiff.pipeline import AVDiffusionPipeline
from avdiff.prepare import discover, prepare_corpus
from avdiff.prepare.segment import split_at_pauses
from avdiff.training.trainer import train

SPEECH = REPO_ROOT.parent / "shared" / "data" / "speech"


@pytest.fixture(scope="module")
def real_speech_files() -> list[Path]:
    files = sorted((SPEECH / "librispeech-train-clean-100").glob("*.flac"))[:3]
    if len(files) < 3:
        pytest.skip(f"real speech not found in {SPEECH} (see the brief: ../shared/data/speech)")
    return files


def make_audio_only_corpus(folder: Path, num_items: int = 6, seconds: float = 0.6, seed: int = 1) -> Path:
    """Tones without video: a manifest of audio-only items."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * 25)
    items = []
    for index in range(num_items):
        name = f"speech{index:02d}"
        sf.write(folder / f"{name}.wav", tone_for_brightness(rng.uniform(0.1, 0.9, frames)), 16000, subtype="FLOAT")
        items.append({"id": name, "audio": f"{name}.wav", "video": None, "num_frames": frames,
                      "duration": frames / 25, "speaker": f"a{index % 3}"})
    path = folder / "manifest.jsonl"
    write_manifest(path, items)
    return path


# ----------------------------------------------------------------------------- prepare


def test_prepare_speech_keeps_real_files_and_reports_broken_ones(tmp_path, real_speech_files):
    raw = tmp_path / "raw" / "spk"
    raw.mkdir(parents=True)
    for path in real_speech_files:
        (raw / path.name).symlink_to(path)
    stereo, rate = sf.read(real_speech_files[0])
    sf.write(raw / "stereo44k.wav", np.stack([stereo, 0.5 * stereo], 1)[:: 1], 44100)  # any rate and channels
    (raw / "empty.wav").write_bytes(b"")
    (raw / "truncated.flac").write_bytes(real_speech_files[1].read_bytes()[:400])
    sf.write(raw / "nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(raw / "silent.wav", np.zeros(32000, np.float32), 16000)
    report = prepare_corpus("speech", tmp_path / "raw", tmp_path / "out")
    reasons = {reject["id"]: reject["reason"] for reject in report.rejected}
    assert set(reasons) == {"spk/empty", "spk/truncated", "spk/nan", "spk/silent"}
    assert "NaN" in reasons["spk/nan"] and "silent" in reasons["spk/silent"]
    items = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert sorted(item["id"] for item in items) == sorted([f"spk/{p.stem}" for p in real_speech_files] + ["spk/stereo44k"])
    for item in items:
        assert item["video"] is None and "face_ok" not in item
        assert item["speaker"] == ("spk" if item["id"] == "spk/stereo44k" else item["id"][4:].split("-")[0])
        info = sf.info(str(tmp_path / "out" / item["audio"]))
        assert (info.samplerate, info.channels) == (16000, 1)
        assert abs(info.frames / 16000 - item["duration"]) < 1e-3 and item["num_frames"] == -(-info.frames // 640)
    again = prepare_corpus("speech", tmp_path / "raw", tmp_path / "out")  # resumes: nothing new to do
    assert again.prepared == [] and len(again.skipped) == 4


def test_long_recordings_are_cut_at_pauses_into_pieces_of_at_most_20_s(tmp_path, real_speech_files):
    pieces = [sf.read(p, dtype="float32")[0] for p in real_speech_files]
    long = np.concatenate([np.concatenate([p, np.zeros(8000, np.float32)]) for p in pieces])
    assert len(long) > 30 * 16000
    (tmp_path / "raw").mkdir()
    sf.write(tmp_path / "raw" / "book.flac", long, 16000)
    prepare_corpus("speech", tmp_path / "raw", tmp_path / "out")
    items = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert [item["id"] for item in items] == [f"book@{k:02d}" for k in range(len(items))] and len(items) >= 2
    assert all(item["duration"] <= 20.0 for item in items)
    assert sum(item["duration"] for item in items) == pytest.approx(len(long) / 16000, abs=1e-3)
    # Every cut falls in a pause (30 dB below the loudest 20 ms), not inside a word.
    cuts = np.cumsum([round(item["duration"] * 16000) for item in items])[:-1]
    loudest = max(np.sqrt(np.mean(long[i : i + 320] ** 2)) for i in range(0, len(long) - 320, 320))
    assert all(np.sqrt(np.mean(long[cut - 160 : cut + 160] ** 2)) < loudest * 10 ** (-30 / 20) for cut in cuts)


def test_split_at_pauses_without_any_pause_still_bounds_the_pieces():
    noise = np.random.default_rng(0).standard_normal(50 * 16000).astype(np.float32)
    pieces = split_at_pauses(noise, 16000, 20.0)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(noise)
    assert all(b - a <= 20 * 16000 for a, b in pieces) and all(p[1] == q[0] for p, q in zip(pieces, pieces[1:]))


def test_librispeech_and_vctk_layouts_find_speakers_and_transcripts(tmp_path):
    tone = tone_for_brightness(np.full(20, 0.5))
    chapter = tmp_path / "libri" / "19" / "198"
    chapter.mkdir(parents=True)
    for utt in ("0000", "0001"):
        sf.write(chapter / f"19-198-{utt}.flac", tone, 16000)
    (chapter / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 CHAPTER ONE\n")
    items = discover("librispeech", tmp_path / "libri")
    assert [(i.id, i.speaker, i.text) for i in items] == [("19/198/19-198-0000", "19", "NORTHANGER ABBEY"),
                                                          ("19/198/19-198-0001", "19", "CHAPTER ONE")]
    vctk = tmp_path / "vctk"
    (vctk / "wav48_silence_trimmed" / "p225").mkdir(parents=True)
    (vctk / "txt" / "p225").mkdir(parents=True)
    for mic in ("mic1", "mic2"):
        sf.write(vctk / "wav48_silence_trimmed" / "p225" / f"p225_001_{mic}.flac", tone, 48000)
    (vctk / "txt" / "p225" / "p225_001.txt").write_text("Please call Stella.\n")
    items = discover("vctk", vctk)
    assert [(i.id, i.speaker, i.text, i.audio.name) for i in items] == [
        ("p225/p225_001", "p225", "Please call Stella.", "p225_001_mic1.flac")]
    table = tmp_path / "tsv"
    (table / "S1").mkdir(parents=True)
    sf.write(table / "S1" / "a.wav", tone, 16000)
    (table / "transcripts.tsv").write_text("S1/a.wav\tHELLO THERE\n")
    assert [(i.speaker, i.text) for i in discover("speech", table)] == [("S1", "HELLO THERE")]


# ----------------------------------------------------------------------------- manifests and splits


def test_manifests_without_video_read_and_refuse_face_flags(tmp_path):
    path = make_audio_only_corpus(tmp_path / "a", num_items=2)
    assert all(item["video"] is None for item in read_manifest(path))
    bad = dict(read_manifest(path)[0], face_ok=[True] * 15)
    (tmp_path / "bad.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(InputError, match="audio-only item .* has no face_ok"):
        read_manifest(tmp_path / "bad.jsonl")


def test_split_holds_out_whole_speakers(tmp_path):
    path = make_audio_only_corpus(tmp_path / "a", num_items=9)
    path.rename(tmp_path / "a" / "all.jsonl")
    written = split_manifest(tmp_path / "a" / "all.jsonl", test_speakers=1, valid_speakers=1, seed=3)
    speakers = {split: {item["speaker"] for item in read_manifest(p)} for split, p in written.items()}
    assert sorted(written) == ["test", "train", "valid"] and all(len(s) == 1 for s in speakers.values())
    assert len(set.union(*speakers.values())) == 3
    assert split_manifest(tmp_path / "a" / "all.jsonl", 1, 1, seed=3) == written  # same seed, same split
    assert {i["speaker"] for i in read_manifest(written["test"])} == speakers["test"]


# ----------------------------------------------------------------------------- mixed training


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("mixed")
    return make_tiny_corpus(folder / "av", num_items=8, num_frames=12, size=32), make_audio_only_corpus(folder / "a")


def test_audio_only_items_never_see_a_face(mixed):
    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml",
                         [f"data.train_manifest=[{mixed[0]}, {mixed[1]}]", *TINY_OVERRIDES])
    dataset = AVCropDataset(config.data.train_manifest, config.data, config.spectrogram, train=True)
    assert len(dataset) == 14 and dataset.has_video
    batch = collate_crops([dataset[(i, 7 + i)] for i in range(len(dataset))])
    audio_only = ~batch["has_video"]
    assert audio_only.sum() == 6
    assert not batch["face_ok"][audio_only].any() and not batch["video_valid"][audio_only].any()
    assert batch["face_ok"][~audio_only].any()
    assert (batch["audio"][audio_only].abs().amax(1) > 0.5).all()  # their audio is there (peak-normalised)


def test_manifest_weights_set_each_manifests_share_of_the_crops(mixed, tmp_path):
    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml",
                         [f"data.train_manifest=[{mixed[0]}, {mixed[1]}]", "data.train_weights=[1, 3]", *TINY_OVERRIDES])
    dataset = AVCropDataset(config.data.train_manifest, config.data, config.spectrogram, train=True)
    sampler = ShardedEpochSampler(len(dataset), 0, weights=dataset.sampling_weights(config.data.train_weights))
    drawn = np.concatenate([sampler.order(epoch) for epoch in range(300)])
    share = np.isin(drawn, np.flatnonzero(np.asarray(dataset.item_manifest) == 1)).mean()
    assert share == pytest.approx(0.75, abs=0.02)  # 4200 draws: standard error 0.007
    with pytest.raises(InputError, match="2 sampling weights for 1"):
        AVCropDataset(mixed[1], config.data, config.spectrogram).sampling_weights([1, 2])


def test_mixed_training_reports_both_parts(mixed, tmp_path):
    manifests = f"[{mixed[0]}, {mixed[1]}]"
    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml",
                         [f"data.train_manifest={manifests}", f"data.valid_manifest={manifests}", *TINY_OVERRIDES,
                          "training.validate_every=2", "training.validation_batches=7", "training.validation_samples=1"])
    result = train(config, tmp_path / "run", max_steps=2, cpu=True)
    assert result.status == "finished"
    log = (tmp_path / "run" / "train.log").read_text()
    assert "validation loss_av" in log and "loss_audio_only" in log and "loss_speech" in log
    index = json.loads((result.model_dir / "avdiff_pipeline.json").read_text())
    assert index["audio_visual"] is True


def test_two_processes_train_on_a_mixed_manifest_in_sync(mixed, tmp_path):
    run = tmp_path / "ddp"
    sets = [f"data.train_manifest=[{mixed[0]}, {mixed[1]}]", "data.train_weights=[1, 1]", *TINY_OVERRIDES]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "avdiff",
               "train", "--config", "tiny", "--output", str(run), "--max-steps", "2", "--cpu", "--record-data-order",
               *sum((["--set", o] for o in sets), [])]
    result = subprocess.run(command, capture_output=True, text=True, env=child_env(), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((run / "ranks" / f"rank{r}.json").read_text()) for r in range(2)]
    assert reports[0]["parameter_checksum"] == reports[1]["parameter_checksum"]
    seen = set(reports[0]["seen_ids"]) | set(reports[1]["seen_ids"])
    assert any(i.startswith("speech") for i in seen) and any(i.startswith("item") for i in seen)


def test_an_audio_only_manifest_exports_a_speech_prior_that_enhances(mixed, tmp_path):
    config = load_config(AVDiffConfig, REPO_ROOT / "configs" / "tiny.yaml",
                         [f"data.train_manifest={mixed[1]}", "lip_encoder.train=false", *TINY_OVERRIDES])
    result = train(config, tmp_path / "prior", max_steps=2, cpu=True)
    pipeline = AVDiffusionPipeline.from_pretrained(result.model_dir)
    assert pipeline.components.audio_visual is False
    noisy = (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32)
    video = np.random.default_rng(1).integers(0, 255, (13, 40, 40), dtype=np.uint8)
    out = pipeline.enhance(noisy, sample_rate=16000, video=video, steps=3)
    assert out.audio.shape == noisy.shape and np.isfinite(out.audio).all()
    assert any("audio-only speech prior" in note for note in out.notes)
    with pytest.raises(InputError, match="audio-only speech prior"):
        pipeline.generate(video)
    # `avdiff export` of the last checkpoint writes the same model the run exported at its end.
    assert main(["export", "--run", str(tmp_path / "prior"), "--output", str(tmp_path / "exported")]) == 0
    from safetensors.torch import load_file

    for part in ("score_model", "lip_encoder"):
        ours = load_file(str(next((tmp_path / "exported" / part).glob("*.safetensors"))))
        theirs = load_file(str(next((result.model_dir / part).glob("*.safetensors"))))
        assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    exported = json.loads((tmp_path / "exported" / "avdiff_pipeline.json").read_text())
    assert exported == json.loads((result.model_dir / "avdiff_pipeline.json").read_text())


def test_avdiff_split_command_prints_each_split(tmp_path, capsys):
    path = make_audio_only_corpus(tmp_path / "a", num_items=6)
    assert main(["split", "--manifest", str(path), "--test-speakers", "1"]) == 0
    out = capsys.readouterr().out
    assert "train: 4 items, 2 speakers" in out and "test: 2 items, 1 speakers" in out


# ----------------------------------------------------------------------------- the shipped speech prior


def test_avdiff_enhance_without_model_uses_the_shipped_speech_prior(tmp_path, monkeypatch):
    from avdiff.pipeline.shipped import DEFAULT_ENHANCER, shipped_models_dir

    folder = shipped_models_dir() / DEFAULT_ENHANCER
    if not (folder / "avdiff_pipeline.json").is_file():
        pytest.fail(f"the shipped model {folder} is missing (see models/README.md)")
    noisy = tmp_path / "noisy.wav"
    sf.write(noisy, (0.1 * np.random.default_rng(0).standard_normal(12000)).astype(np.float32), 16000)
    assert main(["enhance", "--noisy", str(noisy), "--output", str(tmp_path / "out.wav"), "--steps", "2"]) == 0
    audio, rate = sf.read(tmp_path / "out.wav")
    assert rate == 16000 and len(audio) == 12000 and np.isfinite(audio).all()
    assert "model: speech-prior" in (tmp_path / "out.settings.yaml").read_text()
    assert AVDiffusionPipeline.from_pretrained(folder).components.audio_visual is False
    monkeypatch.setenv("AVDIFF_MODELS", str(tmp_path / "nowhere"))
    assert main(["enhance", "--noisy", str(noisy), "--output", str(tmp_path / "again.wav")]) != 0
