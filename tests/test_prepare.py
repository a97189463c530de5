"""`avdiff prepare`: layouts, a batch with bad inputs that carries on, resuming, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from avfixtures import GRID_CLIPS, requires_grid, write_video

from avdiff.cli import main
from avdiff.data.manifest import read_manifest, resolve
from avdiff.landmarks import LandmarkBackendError
from avdiff.prepare import PrepareSettings, discover, grid_sentence, prepare_corpus


def _touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_grid_sentence_from_file_name() -> None:
    assert grid_sentence("bbaf2n") == "bin blue at f two now"
    assert grid_sentence("pwij3p") == "place white in j three please"
    assert grid_sentence("sbia1a") == "set blue in a one again"
    assert grid_sentence("lgwz9s") == "lay green with z nine soon"
    assert grid_sentence("xbaf2n") is None and grid_sentence("bbaw2n") is None  # no 'x' command, no letter w


def test_layouts_follow_published_structures(tmp_path: Path) -> None:
    grid = tmp_path / "grid"
    _touch(grid / "s1" / "video" / "mpg_6000" / "bbaf2n.mpg")
    _touch(grid / "s1" / "video" / "mpg_6000" / "lgwz9s.mpg")
    _touch(grid / "audio_25k" / "s1" / "bbaf2n.wav")
    _touch(grid / "alignments" / "s1" / "bbaf2n.align", "0 100 sil\n100 200 bin\n200 300 blue\n300 310 sp\n310 400 at\n")
    items = {i.id: i for i in discover("grid", grid)}
    assert set(items) == {"s1/bbaf2n", "s1/lgwz9s"}
    assert items["s1/bbaf2n"].audio == grid / "audio_25k" / "s1" / "bbaf2n.wav"
    assert items["s1/bbaf2n"].text == "bin blue at" and items["s1/bbaf2n"].speaker == "s1"
    assert items["s1/lgwz9s"].audio is None and items["s1/lgwz9s"].text == "lay green with z nine soon"

    lrs3 = tmp_path / "lrs3"
    _touch(lrs3 / "trainval" / "0af00UcTOSc" / "50001.mp4")
    _touch(lrs3 / "trainval" / "0af00UcTOSc" / "50001.txt", "Text:  SO THIS IS   IT\nConf:  5\n\nWORD START END ASDSCORE\n")
    _touch(lrs3 / "test" / "0Fi83BHQsMA" / "00002.mp4")
    items = {i.id: i for i in discover("lrs3", lrs3)}
    assert set(items) == {"trainval/0af00UcTOSc/50001", "test/0Fi83BHQsMA/00002"}
    assert items["trainval/0af00UcTOSc/50001"].text == "SO THIS IS IT"
    assert items["trainval/0af00UcTOSc/50001"].speaker == "0af00UcTOSc"
    assert items["test/0Fi83BHQsMA/00002"].text is None

    tcd = tmp_path / "tcd"
    _touch(tcd / "volunteers" / "01M" / "Clips" / "straightcam" / "sa1.mp4")
    _touch(tcd / "volunteers" / "01M" / "Clips" / "straightcam" / "sa1.wav")
    _touch(tcd / "volunteers" / "01M" / "Clips" / "30degcam" / "sa1.mp4")
    _touch(tcd / "lipspeakers" / "Lipspkr1" / "Clips" / "straightcam" / "si1000.mp4")
    items = {i.id: i for i in discover("tcd-timit", tcd)}
    assert set(items) == {"volunteers/01M/sa1", "lipspeakers/Lipspkr1/si1000"}
    assert items["volunteers/01M/sa1"].audio is not None and items["volunteers/01M/sa1"].speaker == "01M"

    folder = tmp_path / "folder"
    _touch(folder / "alice" / "take1.mov")
    _touch(folder / "alice" / "take1.txt", "hello there\nfriend\n")
    _touch(folder / "top.mkv")
    _touch(folder / "notes.txt")
    items = {i.id: i for i in discover("folder", folder)}
    assert set(items) == {"alice/take1", "top"}
    assert items["alice/take1"].text == "hello there friend" and items["alice/take1"].speaker == "alice"
    assert items["top"].speaker == "folder"

    from avdiff.errors import InputError

    with pytest.raises(InputError, match="no videos found"):
        discover("grid", _touch(tmp_path / "no_videos" / "readme.txt").parent)
    with pytest.raises(InputError, match="input folder not found"):
        discover("grid", tmp_path / "missing")
    with pytest.raises(InputError, match="unknown layout"):
        discover("voxceleb", tmp_path)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    """A folder corpus: two real GRID clips and one of each kind of bad input."""
    if len(GRID_CLIPS) < 2:
        pytest.skip(f"needs two real GRID clips in ../shared/data/grid (found {len(GRID_CLIPS)})")
    pytest.importorskip("dlib")
    root = tmp_path_factory.mktemp("raw")
    (root / "grid").mkdir()
    for clip in GRID_CLIPS[:2]:
        shutil.copy(clip, root / "grid" / clip.name)
    _touch(root / "grid" / f"{GRID_CLIPS[0].stem}.txt", "bin blue at f two now\n")
    bad = root / "bad"
    bad.mkdir()
    (bad / "empty.mp4").write_bytes(b"")
    whole = write_video(root / "whole_source.mp4", np.full((50, 64, 64, 3), 128, np.uint8), audio=np.zeros(32000))
    (bad / "truncated.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    write_video(bad / "audio_only.mp4", None, audio=np.zeros(16000))
    noise = np.random.default_rng(0).integers(0, 256, (30, 96, 128, 3), dtype=np.uint8)
    write_video(bad / "no_face.mp4", noise, audio=0.1 * np.random.default_rng(1).standard_normal(19200))
    write_video(bad / "too_short.mp4", noise[:5], audio=np.zeros(3200))
    write_video(bad / "silent.mp4", noise[:20])
    (bad / "missing.mp4").symlink_to(bad / "does_not_exist.mp4")
    return root


EXPECTED_REJECTS = {
    "bad/empty": "file is empty",
    "bad/truncated": "cannot open as a media file",
    "bad/audio_only": "has no video stream",
    "bad/no_face": "no face found in any of its 30 frames",
    "bad/too_short": "too short: 0.20 s",
    "bad/silent": "has no audio stream",
    "bad/missing": "no such file",
}


@requires_grid
def test_batch_with_bad_inputs_carries_on_and_resumes(batch: Path, tmp_path: Path) -> None:
    out = tmp_path / "data"
    settings = PrepareSettings(landmarks="dlib")
    logged: list[str] = []
    report = prepare_corpus("folder", batch, out, settings, workers=2, log=logged.append)
    good = sorted(f"grid/{c.stem}" for c in GRID_CLIPS[:2])
    assert sorted(report.prepared) == good
    reasons = {r["id"]: r["reason"] for r in report.rejected}
    assert set(reasons) == set(EXPECTED_REJECTS)
    for item_id, pattern in EXPECTED_REJECTS.items():
        assert pattern in reasons[item_id], (item_id, reasons[item_id])
        assert "\n" not in reasons[item_id]
    on_disk = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    assert {r["id"]: r["reason"] for r in on_disk} == reasons
    assert len(logged) == len(EXPECTED_REJECTS)

    entries = read_manifest(out / "manifest.jsonl")
    assert [e["id"] for e in entries] == good  # sorted
    first = entries[0]
    assert first["num_frames"] == 75 and first["duration"] == 3.0 and first["speaker"] == "grid"
    assert first["text"] == "bin blue at f two now" and "text" not in entries[1]
    assert first["face_ok"] == [True] * 75
    assert len(first["reliability"]) == 75 and min(first["reliability"]) >= 0.5  # a real talker: every frame usable
    rois = np.load(resolve(out / "manifest.jsonl", first["video"]), allow_pickle=False)
    assert rois.shape == (75, 96, 96) and rois.dtype == np.uint8
    audio, sr = sf.read(resolve(out / "manifest.jsonl", first["audio"]), dtype="float32")
    assert sr == 16000 and audio.shape == (48000,)

    # Re-run: finished items are skipped (files untouched), rejects are retried and reported again.
    mtime = resolve(out / "manifest.jsonl", first["video"]).stat().st_mtime_ns
    again = prepare_corpus("folder", batch, out, settings, workers=1, log=lambda _: None)
    assert again.prepared == [] and sorted(again.skipped) == good and len(again.rejected) == len(EXPECTED_REJECTS)
    assert resolve(out / "manifest.jsonl", first["video"]).stat().st_mtime_ns == mtime

    # An interrupted run (manifest cut mid-line, an item lost): the next run repairs and redoes it.
    text = (out / "manifest.jsonl").read_text()
    lines = text.splitlines(keepends=True)
    (out / "manifest.jsonl").write_text(lines[0] + lines[1][:40])
    with pytest.warns(UserWarning, match="incomplete"):
        resumed = prepare_corpus("folder", batch, out, settings, workers=1, log=lambda _: None)
    assert resumed.prepared == [good[1]] and resumed.skipped == [good[0]]
    assert [e["id"] for e in read_manifest(out / "manifest.jsonl")] == good


@requires_grid
def test_unusable_backend_stops_the_run(batch: Path, tmp_path: Path) -> None:
    pytest.importorskip("face_alignment")
    empty = tmp_path / "weights"
    empty.mkdir()
    settings = PrepareSettings(landmarks="face-alignment", landmark_weights=str(empty))
    with pytest.raises(LandmarkBackendError, match="weights missing"):
        prepare_corpus("folder", batch / "grid", tmp_path / "data", settings, log=lambda _: None)


@requires_grid
def test_cli_prepare_grid_layout(tmp_path: Path, capsys) -> None:
    pytest.importorskip("dlib")
    raw = tmp_path / "raw" / "s3"
    raw.mkdir(parents=True)
    shutil.copy(GRID_CLIPS[-1], raw / GRID_CLIPS[-1].name)
    code = main(["prepare", "--layout", "grid", "--input", str(tmp_path / "raw"), "--output", str(tmp_path / "out"),
                 "--landmarks", "dlib", "--roi-size", "88"])
    assert code == 0
    assert "prepared 1, skipped 0 (already done), rejected 0" in capsys.readouterr().out
    (entry,) = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert entry["id"] == f"s3/{GRID_CLIPS[-1].stem}" and entry["speaker"] == "s3"
    assert entry["text"] == grid_sentence(GRID_CLIPS[-1].stem)
    assert np.load(tmp_path / "out" / entry["video"]).shape == (75, 88, 88)


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    code = main(["prepare", "--layout", "grid", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"),
                 "--landmarks", "dlib"])
    err = capsys.readouterr().err
    assert code == 2 and "input folder not found" in err and len(err.strip().splitlines()) == 1
    code = main(["prepare", "--layout", "grid", "--input", str(tmp_path), "--output", str(tmp_path / "o"),
                 "--workers", "0"])
    assert code == 2 and "--workers must be >= 1" in capsys.readouterr().err


def test_a_second_run_on_one_output_folder_waits_then_resumes(tmp_path: Path) -> None:
    """While a run holds the folder's lock, another does not touch the manifest; it goes on when the
    lock is released, so two runs never append the same items twice."""
    import threading

    from badinputs import speech_like

    from avdiff.prepare.runner import folder_lock

    raw, out = tmp_path / "raw" / "spk", tmp_path / "out"
    raw.mkdir(parents=True)
    out.mkdir()
    sf.write(raw / "utt.wav", speech_like(1.0), 16000)
    logged: list[str] = []
    with folder_lock(out, logged.append):
        second = threading.Thread(target=prepare_corpus, args=("speech", raw.parent, out),
                                  kwargs={"log": logged.append})
        second.start()
        second.join(timeout=3)
        assert second.is_alive() and not (out / "manifest.jsonl").exists()
        assert any("another prepare run is writing" in line for line in logged)
    second.join(timeout=60)
    assert not second.is_alive() and [e["id"] for e in read_manifest(out / "manifest.jsonl")] == ["spk/utt"]
