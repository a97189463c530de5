"""Issue 15's bad-input corpus through the real command line (`python -m avdiff ...`, one batch per
command), counted: inputs tried, written and valid, clear errors, unclear errors, tracebacks and
lost or corrupt outputs. The corpus is tests/badinputs.py's (made here, nothing committed); the
model is a tiny untrained one (the outcome of a bad input does not depend on the weights). From
the repository root, with tests/ on the import path as pytest puts it:

    PYTHONPATH=tests .venv/bin/python -m reliability.bad_inputs          # the tests' corpus, plus output and run cases
    PYTHONPATH=tests .venv/bin/python -m reliability.bad_inputs --slow   # also a 10-minute recording (enhance, prepare)

"Clear": one stderr line naming the file and holding the expected reason. "Lost or corrupt": a
good input without a valid output, a bad one with an output, or an output changed by a re-run.
Run cases: outputs that cannot be written (below a file; read-only: a read-only bind mount when
run as root, else chmod), an existing output, a re-run, two enhance runs into one folder, audio
and video of different lengths. Exit code 0 when there are no tracebacks, unclear errors or lost
outputs. OUTPUT/record.json (`benchmarks.common.record`) keeps the counts with the run's provenance.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from badinputs import (  # tests/: the bad-input corpus the tests use
    Case, audio_cases, evaluate_cases, lines_naming, prepare_cases, speech_like, unwritable_folders, video_cases,
)

from avdiff.media.audio import decode_audio_channels
from avdiff.media.files import AUDIO_SUFFIXES, VIDEO_INPUT_SUFFIXES
from avdiff.pipeline.batch import files_in, item_names

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Counts:
    """One row of the table."""

    tried: int = 0
    written: int = 0
    clear: int = 0
    unclear: list[str] = field(default_factory=list)
    tracebacks: int = 0
    lost: list[str] = field(default_factory=list)


def avdiff(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command line, in a fresh process."""
    return subprocess.run([sys.executable, "-m", "avdiff", *args], capture_output=True, text=True, cwd=REPO_ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


def tally(counts: Counts, cases: list[Case], result: subprocess.CompletedProcess,
          valid: dict[Path, bool]) -> None:
    """Count each case: refused with one clear line, or written and valid (`valid`: per input)."""
    counts.tracebacks += result.stderr.count("Traceback")
    for case in cases:
        counts.tried += 1
        lines = lines_naming(result.stderr, case.path)
        if case.refuse is None:
            counts.written += valid.get(case.path, False)
            if not valid.get(case.path, False):
                counts.lost.append(f"{case.path.name}: no valid output ({' | '.join(lines) or 'no message'})")
        elif len(lines) == 1 and case.refuse in lines[0]:
            counts.clear += 1
            if valid.get(case.path, False):
                counts.lost.append(f"{case.path.name}: refused but an output was written")
        else:
            counts.unclear.append(f"{case.path.name}: {lines or 'no line names it'}")


def batch_outputs(folder: Path, out: Path, suffixes: tuple[str, ...]) -> dict[Path, Path]:
    files = files_in(folder, suffixes)
    return {path: out / f"{name}.wav" for name, path in zip(item_names(files, folder), files)}


def enhanced_ok(case: Case, output: Path) -> bool:
    """The output keeps the input's rate, length and channels and is finite."""
    if not output.is_file():
        return False
    source = decode_audio_channels(case.path)
    audio, rate = sf.read(output, always_2d=True)
    return (rate == source.sample_rate and audio.shape == (source.samples.shape[-1], case.channels)
            and bool(np.isfinite(audio).all()))


def run_enhance(model: Path, root: Path, slow: bool, table: dict[str, Counts]) -> None:
    cases = audio_cases(root / "noisy ñ", long_minutes=10 if slow else None)
    out = root / "missing parent" / "enhanced"
    args = ["enhance", "--model", str(model), "--noisy", str(root / "noisy ñ"), "--output", str(out), "--steps", "2"]
    result = avdiff(*args)
    where = batch_outputs(root / "noisy ñ", out, AUDIO_SUFFIXES)
    counts = table.setdefault("enhance", Counts())
    tally(counts, cases, result, {case.path: enhanced_ok(case, where[case.path]) for case in cases})
    rerun(counts, args, where)
    two_runs(counts, args, root / "two runs")
    lengths(counts, model, root)


def rerun(counts: Counts, args: list[str], where: dict[Path, Path]) -> None:
    """A re-run rewrites nothing that was written (existing outputs are skipped)."""
    stamps = {path: path.stat().st_mtime_ns for path in where.values() if path.exists()}
    result = avdiff(*args)
    counts.tracebacks += result.stderr.count("Traceback")
    changed = [path.name for path in stamps if path.stat().st_mtime_ns != stamps[path]]
    counts.tried += 1
    counts.lost += [f"re-run rewrote {name}" for name in changed]
    counts.written += not changed


def two_runs(counts: Counts, args: list[str], out: Path) -> None:
    """Two enhance runs into one folder at once: neither reports a failure that the other caused."""
    command = [*args[:args.index("--output") + 1], str(out), *args[args.index("--output") + 2:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen([sys.executable, "-m", "avdiff", *command], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, env=env) for _ in range(2)]
    errors = [run.communicate()[1] for run in runs]
    first = avdiff(*command)  # the failures a single run reports: the bad inputs
    expected = first.stderr.count("failed: ")
    counts.tried += 1
    spurious = [err.count("failed: ") - expected for err in errors]
    counts.tracebacks += sum(err.count("Traceback") for err in errors)
    if any(spurious):
        counts.unclear.append(f"two runs into one folder: {spurious} spurious failures")
    else:
        counts.clear += 1
    leftovers = [p.name for p in out.iterdir() if ".tmp" in p.name]
    counts.lost += [f"temporary file left: {name}" for name in leftovers]


def lengths(counts: Counts, model: Path, root: Path) -> None:
    """Audio with video of another length: 0.2 s shorter is noted, 2 s longer refused."""
    noisy = root / "av" / "noisy.wav"
    noisy.parent.mkdir()
    sf.write(noisy, speech_like(1.0), 16000)
    for frames, expect in ((20, "video 0.80 s vs audio 1.00 s"), (75, "the video lasts 3.00 s")):
        crops = root / "av" / f"crops {frames}.npy"
        np.save(crops, np.random.default_rng(0).integers(0, 256, (frames, 40, 40), dtype=np.uint8))
        out = root / "av" / f"out {frames}.wav"
        result = avdiff("enhance", "--model", str(model), "--noisy", str(noisy), "--video", str(crops), "--output",
                        str(out), "--steps", "2")
        counts.tried += 1
        counts.tracebacks += result.stderr.count("Traceback")
        said = result.stdout + result.stderr
        if expect in said and out.exists() == (frames == 20):
            counts.clear += frames != 20
            counts.written += frames == 20
        else:
            counts.unclear.append(f"video of {frames} frames for 1 s of audio: {said.strip()[-200:]}")


def run_generate(model: Path, root: Path, grid: list[Path], table: dict[str, Counts]) -> None:
    cases = video_cases(root / "videos ñ", grid)
    out = root / "generated"
    result = avdiff("generate", "--model", str(model), "--video", str(root / "videos ñ"), "--output", str(out),
                    "--steps", "2", "--landmarks", "dlib")
    where = batch_outputs(root / "videos ñ", out, VIDEO_INPUT_SUFFIXES)
    valid = {}
    for case in cases:
        path = where[case.path]
        valid[case.path] = path.is_file() and bool(np.isfinite(sf.read(path)[0]).all())
    tally(table.setdefault("generate", Counts()), cases, result, valid)


def run_prepare(root: Path, grid: list[Path], slow: bool, table: dict[str, Counts]) -> None:
    counts = table.setdefault("prepare", Counts())
    video = prepare_cases(root / "raw ñ", grid)
    speech = audio_cases(root / "speech ñ", "prepare", long_minutes=10 if slow else None)
    for layout, cases, source, extra in (("folder", video, root / "raw ñ", ["--landmarks", "dlib"]),
                                         ("speech", speech, root / "speech ñ", [])):
        out = root / f"prepared {layout}"
        result = avdiff("prepare", "--layout", layout, "--input", str(source), "--output", str(out), *extra)
        manifest = (out / "manifest.jsonl").read_text(encoding="utf-8") if (out / "manifest.jsonl").exists() else ""
        valid = {case.path: case.path.stem in manifest for case in cases}
        tally(counts, cases, result, valid)


def run_evaluate(root: Path, table: dict[str, Counts]) -> None:
    reference, estimate, cases = evaluate_cases(root / "eval")
    output = root / "eval out" / "metrics.json"
    args = ["evaluate", "--reference", str(reference), "--estimate", str(estimate), "--output", str(output),
            "--no-progress"]
    result = avdiff(*args)
    summary = json.loads(output.read_text(encoding="utf-8")) if output.exists() else {"unusable": {}}
    markdown = output.with_suffix(".md").read_text(encoding="utf-8") if output.exists() else ""
    valid = {case.path: output.exists() and case.path.stem not in summary["unusable"]
             and (case.note is None or case.note in markdown) for case in cases if case.refuse is None}
    counts = table.setdefault("evaluate", Counts())
    tally(counts, cases, result, valid)
    again = avdiff(*args)  # an existing summary: refused without --overwrite
    counts.tried += 1
    if again.returncode == 2 and "--overwrite" in again.stderr:
        counts.clear += 1
    else:
        counts.unclear.append(f"existing metrics.json: {again.stderr.strip()}")


def read_only_mount(root: Path) -> Path | None:
    """A read-only bind mount (root only; None where it cannot be made)."""
    if os.geteuid() != 0:
        return None
    target = root / "read-only mount"
    target.mkdir()
    made = subprocess.run(["mount", "--bind", str(target), str(target)], capture_output=True)
    if made.returncode != 0:
        return None
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(target)], capture_output=True)
        return None
    return target


def run_outputs(model: Path, root: Path, table: dict[str, Counts]) -> None:
    """Outputs that cannot be written: refused with one line naming the folder, before any work."""
    counts = table.setdefault("outputs", Counts())
    noisy = root / "one" / "speech.wav"
    noisy.parent.mkdir(parents=True)
    sf.write(noisy, speech_like(0.6), 16000)
    folders = unwritable_folders(root)
    mount = read_only_mount(root)
    if mount is not None:
        folders["read-only mount"] = mount
    try:
        for kind, folder in folders.items():
            for command, args in {
                "generate": ["--model", str(model), "--video", str(noisy), "--output", str(folder / "x.wav")],
                "enhance": ["--model", str(model), "--noisy", str(noisy), "--output", str(folder / "x.wav")],
                "prepare": ["--layout", "speech", "--input", str(noisy.parent), "--output", str(folder)],
                "evaluate": ["--reference", str(noisy.parent), "--estimate", str(noisy.parent), "--output",
                             str(folder / "metrics.json")],
            }.items():
                result = avdiff(command, *args)
                counts.tried += 1
                counts.tracebacks += result.stderr.count("Traceback")
                if result.returncode == 2 and f"cannot write to {folder}" in result.stderr \
                        and result.stderr.count("\n") == 1:
                    counts.clear += 1
                else:
                    counts.unclear.append(f"{command} into {kind}: {result.stderr.strip()[-300:]}")
    finally:
        if mount is not None:
            subprocess.run(["umount", str(mount)], capture_output=True)


def print_table(table: dict[str, Counts]) -> int:
    """The counts, then every unclear error and lost output; returns the exit code."""
    print("| command | inputs tried | written and valid | clear errors | unclear errors | tracebacks | "
          "lost or corrupt outputs |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, c in table.items():
        print(f"| {name} | {c.tried} | {c.written} | {c.clear} | {len(c.unclear)} | {c.tracebacks} | {len(c.lost)} |")
    bad = [line for c in table.values() for line in c.unclear + c.lost]
    for line in bad:
        print(f"- {line}")
    return 1 if bad or any(c.tracebacks for c in table.values()) else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slow", action="store_true", help="add a 10-minute recording (enhance and prepare)")
    parser.add_argument("--grid", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "grid",
                        help="folder of real GRID .mpg clips (video cases need two; skipped without)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "bad-inputs",
                        help="folder for record.json (default: %(default)s)")
    args = parser.parse_args()
    from avdiff.pipeline import save_model_folder
    from tinymodels import tiny_components

    grid = sorted(args.grid.glob("*.mpg"))[:2]
    table: dict[str, Counts] = {}
    with tempfile.TemporaryDirectory(prefix="avdiff-bad-inputs-") as tmp:
        root = Path(tmp)
        model = save_model_folder(tiny_components(), root / "model")
        run_enhance(model, root / "enhance", args.slow, table)
        if len(grid) == 2:
            run_generate(model, root / "generate", grid, table)
            run_prepare(root / "prepare", grid, args.slow, table)
        else:
            print(f"no two GRID clips in {args.grid}: generate and prepare's video cases skipped", file=sys.stderr)
        run_evaluate(root / "evaluate", table)
        run_outputs(model, root / "outputs", table)
    from benchmarks.common.record import record  # the repository root is on the path of `python -m` run there

    record(args.output, args, {name: asdict(counts) for name, counts in table.items()})
    return print_table(table)


if __name__ == "__main__":
    raise SystemExit(main())
