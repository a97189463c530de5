"""Issue 15's bad-input corpus (tests/badinputs.py) through the real command line, one batch per
command: every bad item gets one line naming its file and the reason (never a traceback), every
good item is written and valid, exit codes say what happened (0 all done, 1 some items failed, 2
nothing done), a re-run redoes only what failed, and an output that cannot be written is refused
before any model is loaded or anything computed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from avdiff.cli import main
from avdiff.data.manifest import read_manifest
from avdiff.errors import InputError
from avdiff.landmarks.base import LandmarkBackendError
from avdiff.media.audio import decode_audio_channels
from avdiff.media.files import VIDEO_INPUT_SUFFIXES, temporary_path
from avdiff.pipeline.batch import BatchItem, files_in, item_names, run_batch
from badinputs import Case, audio_cases, evaluate_cases, lines_naming, prepare_cases, random_bytes, unwritable_folders
from badinputs import video_cases


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained model folder."""
    from avdiff.pipeline import save_model_folder
    from tinymodels import tiny_components

    return save_model_folder(tiny_components(), tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="module")
def grid_clips(grid_dir: Path) -> list[Path]:
    pytest.importorskip("dlib")  # the offline landmark backend
    return sorted(grid_dir.glob("*.mpg"))[:2]


def run(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_lines(cases: list[Case], err: str) -> None:
    """One stderr line per refused case, naming its file and holding the reason; none for the others."""
    assert "Traceback" not in err
    for case in cases:
        lines = lines_naming(err, case.path)
        if case.refuse is None:
            assert lines == [], (case.path.name, lines)
        else:
            assert len(lines) == 1 and case.refuse in lines[0], (case.path.name, lines)


def outputs(folder: Path, out: Path, suffixes: tuple[str, ...]) -> dict[Path, Path]:
    """Input file -> its output file, as the batch commands name them."""
    files = files_in(folder, suffixes)
    return {path: out / f"{name}.wav" for name, path in zip(item_names(files, folder), files)}


def test_enhance_batch_of_bad_inputs(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cases = audio_cases(tmp_path / "noisy ñ")
    out = tmp_path / "new" / "deeper" / "enhanced"  # missing parents are created
    args = ["enhance", "--model", str(model), "--noisy", str(tmp_path / "noisy ñ"), "--output", str(out), "--steps", "2"]
    code, stdout, err = run(args, capsys)
    assert code == 1
    check_lines(cases, err)
    where = outputs(tmp_path / "noisy ñ", out, (".wav", ".flac"))
    for case in cases:
        if case.refuse is not None:
            assert not where[case.path].exists()
            continue
        source = decode_audio_channels(case.path)
        written, rate = sf.read(where[case.path], always_2d=True)
        assert rate == source.sample_rate and written.shape == (source.samples.shape[-1], case.channels), case.path
        assert np.isfinite(written).all() and (np.abs(written).max() > 0) == (np.abs(source.samples).max() > 0)
        if case.note:
            assert any(case.note in line for line in lines_naming(stdout, case.path)), case.path.name
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(failures) == sum(case.refuse is not None for case in cases)
    stamps = {path: path.stat().st_mtime_ns for path in where.values() if path.exists()}
    code, stdout, err = run(args, capsys)  # a re-run redoes only what failed
    assert code == 1 and f"0 written, {len(stamps)} already there (skipped), {len(failures)} failed" in stdout
    assert stamps == {path: path.stat().st_mtime_ns for path in stamps}
    check_lines(cases, err)


def test_generate_batch_of_bad_inputs(model: Path, grid_clips: list[Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    cases = video_cases(tmp_path / "videos ñ", grid_clips)
    out = tmp_path / "generated"
    code, _, err = run(["generate", "--model", str(model), "--video", str(tmp_path / "videos ñ"), "--output", str(out),
                        "--steps", "2", "--landmarks", "dlib"], capsys)
    assert code == 1
    check_lines(cases, err)
    where = outputs(tmp_path / "videos ñ", out, VIDEO_INPUT_SUFFIXES)
    frames = {"mouth crops.npy": 25, "ñ 0.1s crops.npy": 3, "grid no audio.mp4": 75, "grid clip ü.mpg": 75}
    for case in cases:
        assert where[case.path].exists() == (case.refuse is None), case.path.name
    for name, count in frames.items():
        audio, rate = sf.read(where[tmp_path / "videos ñ" / name])
        assert rate == 16000 and audio.shape == (640 * count,) and np.isfinite(audio).all()


def test_prepare_batches_of_bad_inputs(grid_clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for layout, cases, extra in (("folder", prepare_cases(tmp_path / "raw ñ", grid_clips), ["--landmarks", "dlib"]),
                                 ("speech", audio_cases(tmp_path / "speech ñ", "prepare"), [])):
        source = cases[0].path.parent if layout == "speech" else tmp_path / "raw ñ"
        out = tmp_path / f"prepared {layout}"
        args = ["prepare", "--layout", layout, "--input", str(source), "--output", str(out), *extra]
        code, stdout, err = run(args, capsys)
        assert code == 1, err
        check_lines(cases, err)
        sources = {Path(entry["source"]).stem for entry in map(json.loads, (out / "rejects.jsonl").open())}
        assert sources == {case.path.stem for case in cases if case.refuse is not None}
        entries = read_manifest(out / "manifest.jsonl")
        assert len(entries) == sum(case.refuse is None for case in cases)
        for entry in entries:
            audio, rate = sf.read(out / entry["audio"])
            assert rate == 16000 and np.isfinite(audio).all() and len(audio) >= 0.5 * 16000
        code, stdout, _ = run(args, capsys)  # the re-run skips what was prepared, retries the rejects
        assert code == 1 and f"prepared 0, skipped {len(entries)} (already done), rejected {len(sources)}" in stdout


def test_evaluate_batch_of_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    reference, estimate, cases = evaluate_cases(tmp_path / "eval")
    output = tmp_path / "new" / "metrics.json"
    args = ["evaluate", "--reference", str(reference), "--estimate", str(estimate), "--output", str(output),
            "--no-progress"]
    code, _, err = run(args, capsys)
    assert code == 1
    check_lines(cases, err)
    summary = json.loads(output.read_text(encoding="utf-8"))
    refused = {case.path.stem for case in cases if case.refuse is not None}
    assert set(summary["unusable"]) == refused
    assert summary["systems"]["estimate"]["stoi"]["n"] == len(cases) - len(refused)
    markdown = output.with_suffix(".md").read_text(encoding="utf-8")
    for case in cases:  # values left out of the means are listed with the reason, never dropped silently
        if case.note:
            assert f"estimate: {case.path.stem}: si_sdr: " in markdown and case.note in markdown
            assert any(case.note in line for line in err.splitlines() if f"{case.path.stem} (estimate)" in line)
    assert summary["systems"]["estimate"]["si_sdr"]["excluded"] == 2
    code, _, err = run(args, capsys)  # an existing summary is not replaced without --overwrite
    assert code == 2 and "--overwrite" in err and err.count("\n") == 1
    assert run([*args, "--overwrite"], capsys)[0] == 1


def test_unwritable_outputs_are_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    audio = audio_cases(tmp_path / "in")[0].path
    np.save(tmp_path / "crops.npy", np.zeros((5, 40, 40), np.uint8))
    for kind, folder in unwritable_folders(tmp_path).items():
        commands = {  # a missing model, input or reference would be the error if the output came later
            "generate": ["--model", str(tmp_path / "no model"), "--video", str(tmp_path / "crops.npy"),
                         "--output", str(folder / "x.wav")],
            "enhance": ["--model", str(tmp_path / "no model"), "--noisy", str(audio), "--output", str(folder / "x.wav")],
            "prepare": ["--layout", "speech", "--input", str(tmp_path / "in"), "--output", str(folder)],
            "evaluate": ["--reference", str(tmp_path / "no reference"), "--estimate", str(tmp_path / "in"),
                         "--output", str(folder / "metrics.json")],
        }
        for command, args in commands.items():
            code, _, err = run([command, *args], capsys)
            assert code == 2 and err.count("\n") == 1 and f"cannot write to {folder}" in err, (kind, command, err)


def test_a_bad_landmark_weights_file_is_one_error_up_front(model: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("dlib")
    weights = random_bytes(tmp_path / "weights.dat", 5000)
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4"):
        random_bytes(videos / name)
    for args in (["prepare", "--layout", "folder", "--input", str(videos), "--output", str(tmp_path / "p")],
                 ["generate", "--model", str(model), "--video", str(videos), "--output", str(tmp_path / "g")]):
        code, _, err = run([*args, "--landmarks", "dlib", "--landmark-weights", str(weights)], capsys)
        assert code == 2 and err.count("\n") == 1 and f"{weights}: not a dlib 68-point shape predictor file" in err
    pytest.importorskip("face_alignment")
    from avdiff.landmarks.fa_backend import expected_weight_files

    folder = tmp_path / "fa weights"
    folder.mkdir()
    for name in expected_weight_files().values():
        random_bytes(folder / name, 5000)
    code, _, err = run(["prepare", "--layout", "folder", "--input", str(videos), "--output", str(tmp_path / "p"),
                        "--landmark-weights", str(folder)], capsys)
    picked, error = err.splitlines()  # --landmarks auto says what it picked (a folder: face-alignment), then one error
    assert code == 2 and picked.startswith("landmarks: face-alignment (weights from")
    assert f"{folder}: cannot load the face-alignment weights" in error
    assert "weights_only" not in err  # no advice to unpickle what it could not read


def test_run_batch_turns_any_exception_into_that_items_failure(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    done = []

    def process(item: BatchItem) -> None:
        if item.id == "a":
            raise EOFError("No data left in file")
        if item.id == "b":
            raise InputError(f"{item.source}: holds no audio samples")
        done.append(item.id)

    items = [BatchItem(name, tmp_path / f"{name}.wav", source=tmp_path / f"{name}.npy") for name in "abc"]
    report = run_batch(items, process, tmp_path)
    assert done == ["c"] and [failure["id"] for failure in report.failed] == ["a", "b"]
    assert report.failed[0]["reason"] == f"{tmp_path / 'a.npy'}: unexpected EOFError: No data left in file"
    assert report.failed[1]["reason"] == f"{tmp_path / 'b.npy'}: holds no audio samples"  # named once
    assert len((tmp_path / "failures.jsonl").read_text().splitlines()) == 2
    assert capsys.readouterr().err.count("failed: ") == 2

    def backend_broken(item: BatchItem) -> None:
        raise LandmarkBackendError("the landmark backend cannot run")

    with pytest.raises(LandmarkBackendError):  # no item could get past it: the batch stops
        run_batch(items, backend_broken, tmp_path)
    path = tmp_path / "x.wav"
    assert temporary_path(path) != temporary_path(path) and temporary_path(path).parent == tmp_path
