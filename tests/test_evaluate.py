"""`avdiff evaluate` and evaluate_folders: matching, outputs, statistics, baselines, errors, WER skip."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import stats

pytest.importorskip("pesq", reason="pesq is not installed (pip install 'avdiff[eval]')")
pytest.importorskip("pystoi", reason="pystoi is not installed (pip install 'avdiff[eval]')")

from avdiff.cli import main  # noqa: E402
from avdiff.errors import InputError  # noqa: E402
from avdiff.evaluation import (  # noqa: E402
    EvaluationResult, evaluate_folders, load_transcriber, markdown_table, mean_ci95, noisereduce_folder, si_sdr,
    word_error_rate,
)
from avdiff.evaluation import folders as folders_module  # noqa: E402
from avdiff.media import load_audio  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SR = 16000


def write(path: Path, audio: np.ndarray, sample_rate: int = SR) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = "FLOAT" if path.suffix == ".wav" else "PCM_24"
    sf.write(str(path), audio.astype(np.float32), sample_rate, subtype=subtype)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """ref/, noisy/ (real noise at 5 dB), est/ (a partial clean-up) from three 2-s GRID utterances.

    est/ lacks c and holds an extra file; names nest one folder deep (spk/a) to test relative ids.
    """
    clips = sorted((SHARED_DATA / "grid").glob("*.mpg"))[:3]
    noise_file = SHARED_DATA / "noise" / "noise2.wav"
    if len(clips) < 3 or not noise_file.is_file():
        pytest.skip(f"real GRID clips / noise not found in {SHARED_DATA} (../shared/data beside the repo)")
    root = tmp_path_factory.mktemp("eval")
    noise = load_audio(noise_file)
    signals = {}
    for index, (name, clip) in enumerate(zip(["spk/a", "spk/b", "c"], clips)):
        clean = load_audio(clip)[8000:40000]
        clean = 0.5 * clean / np.abs(clean).max()
        part = noise[index * 16000:index * 16000 + 32000]  # noise2 is 5 s long
        noisy = clean + part * np.sqrt(np.sum(clean**2) / np.sum(part**2) / 10 ** 0.5)
        signals[name] = (clean, noisy)
        write(root / "ref" / f"{name}.wav", clean)
        write(root / "noisy" / f"{name}.wav", noisy)
        if name != "c":
            write(root / "est" / f"{name}.flac" if name == "spk/b" else root / "est" / f"{name}.wav",
                  0.8 * clean + 0.2 * noisy)
    write(root / "est" / "extra.wav", signals["c"][0])
    return {"root": root, "signals": signals}


def test_evaluate_folders_matches_by_relative_name(corpus: dict, capsys: pytest.CaptureFixture) -> None:
    root = corpus["root"]
    result = evaluate_folders(root / "ref", root / "est", root / "noisy")
    assert [row["id"] for row in result.rows] == ["spk/a", "spk/b"]  # .flac matches .wav by name
    assert result.unmatched == {"missing_in_estimate": ["c"], "extra_in_estimate": ["extra"], "missing_in_noisy": []}
    err = capsys.readouterr().err
    assert "missing in estimate: 1 file(s): c" in err and "extra in estimate: 1 file(s): extra" in err
    assert "WER skipped: no ASR model given" in err and result.notes[0].startswith("WER skipped")
    # the values are the metrics of the files, and SI-SDRi is estimate minus noisy
    clean, noisy = corpus["signals"]["spk/a"]
    row, noisy_row = result.rows[0], result.baselines["noisy"].rows[0]
    assert noisy_row["si_sdr"] == pytest.approx(si_sdr(clean, noisy), abs=1e-3)
    assert noisy_row["si_sdr"] == pytest.approx(5.0, abs=0.3)
    assert row["si_sdr_i"] == pytest.approx(row["si_sdr"] - noisy_row["si_sdr"])
    for key in ("si_sdr", "pesq_wb", "pesq_nb", "stoi", "estoi"):
        assert result.summary[key]["mean"] > result.baselines["noisy"].summary[key]["mean"], key
    assert result.summary["lsd"]["mean"] < result.baselines["noisy"].summary["lsd"]["mean"]
    assert set(result.systems()) == {"noisy", "est"} and list(result.systems())[-1] == "est"


def test_noisy_folder_restricts_the_matched_set(corpus: dict, tmp_path: Path) -> None:
    root = corpus["root"]
    noisy = tmp_path / "noisy"
    write(noisy / "spk" / "a.wav", corpus["signals"]["spk/a"][1])
    result = evaluate_folders(root / "ref", root / "est", noisy, log=lambda line: None)
    assert [row["id"] for row in result.rows] == ["spk/a"]
    assert result.unmatched["missing_in_noisy"] == ["spk/b"]
    assert result.summary["si_sdr"]["n"] == 1 and result.summary["si_sdr"]["ci95"] is None


def test_written_csv_json_and_markdown(corpus: dict, tmp_path: Path) -> None:
    root = corpus["root"]
    result = evaluate_folders(root / "ref", root / "est", root / "noisy", name="model", log=lambda line: None)
    paths = result.write(tmp_path / "out" / "metrics.json")
    assert paths == {"json": tmp_path / "out" / "metrics.json", "csv": tmp_path / "out" / "metrics.csv",
                     "markdown": tmp_path / "out" / "metrics.md"}
    with paths["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["system"], r["id"]) for r in rows] == [("noisy", "spk/a"), ("noisy", "spk/b"),
                                                      ("model", "spk/a"), ("model", "spk/b")]
    assert list(rows[0])[:6] == ["system", "id", "reference", "estimate", "si_sdr", "si_sdr_i"]
    document = json.loads(paths["json"].read_text())
    assert document["system"] == "model" and list(document["systems"]) == ["noisy", "model"]
    assert document["unmatched"]["missing_in_estimate"] == ["c"]
    assert document["settings"]["pesq_nb_rate"] == 8000 and document["settings"]["files_evaluated"] == 2
    for system in ("noisy", "model"):
        column = [float(r["pesq_wb"]) for r in rows if r["system"] == system]
        assert document["systems"][system]["pesq_wb"] == pytest.approx(mean_ci95(column))
    assert "si_sdr_i" not in document["systems"]["noisy"]
    markdown = paths["markdown"].read_text()
    model_stats = document["systems"]["model"]["si_sdr"]
    assert f"| model | 2 | {model_stats['mean']:.2f} ± {model_stats['ci95']:.2f} |" in markdown
    assert "- missing in estimate (1): c" in markdown and "WER skipped" in markdown
    with pytest.raises(InputError, match="name the JSON summary"):
        result.write(tmp_path / "metrics.md")


def test_mean_ci95_matches_scipy() -> None:
    values = [3.1, 2.7, 4.0, 3.6, 2.2, 3.3, 5.1]
    summary = mean_ci95(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert summary["n"] == 7 and summary["mean"] == pytest.approx(np.mean(values))
    assert summary["ci95"] == pytest.approx((high - low) / 2, rel=1e-12)
    assert mean_ci95([2.0, 4.0])["ci95"] == pytest.approx(12.7062047362, rel=1e-9)  # t_{0.975,1} * (sqrt(2) / sqrt(2))
    assert mean_ci95([1.5]) == {"mean": 1.5, "ci95": None, "n": 1}
    assert mean_ci95([]) == {"mean": None, "ci95": None, "n": 0}
    with_bad = mean_ci95([1.0, math.nan, 3.0, math.inf])
    assert with_bad["n"] == 2 and with_bad["excluded"] == 2 and with_bad["mean"] == 2.0


def test_markdown_table_rows_are_systems_and_columns_metrics() -> None:
    systems = {
        "noisy": {"si_sdr": {"mean": 0.1234, "ci95": 0.5, "n": 10}, "estoi": {"mean": 0.41234, "ci95": 0.01, "n": 10}},
        "ours": {"si_sdr": {"mean": 9.876, "ci95": None, "n": 1}, "wer": {"mean": 0.25, "ci95": 0.1, "n": 1}},
    }
    lines = markdown_table(systems).splitlines()
    assert lines[0] == "| system | n | SI-SDR (dB) ↑ | ESTOI ↑ | WER ↓ |"
    assert lines[1] == "| --- | --- | --- | --- | --- |"
    assert lines[2] == "| noisy | 10 | 0.12 ± 0.50 | 0.412 ± 0.010 | – |"
    assert lines[3] == "| ours | 1 | 9.88 | – | 0.250 ± 0.100 |"


def test_clear_errors(corpus: dict, tmp_path: Path) -> None:
    root = corpus["root"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"estimate folder .*empty holds no audio files"):
        evaluate_folders(root / "ref", tmp_path / "empty")
    with pytest.raises(InputError, match=r"reference folder .*nowhere: no such folder"):
        evaluate_folders(tmp_path / "nowhere", root / "est")
    other = tmp_path / "other"
    write(other / "zzz.wav", corpus["signals"]["c"][0])
    with pytest.raises(InputError, match=r"no file names in common .*'zzz'"):
        evaluate_folders(root / "ref", other)
    broken = tmp_path / "broken"
    (broken / "spk").mkdir(parents=True)
    (broken / "spk" / "a.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(InputError, match=r"broken/spk/a.wav"):
        evaluate_folders(root / "ref", broken, log=lambda line: None)
    short = tmp_path / "short"
    write(short / "spk" / "a.wav", corpus["signals"]["spk/a"][0][:-1600])
    with pytest.raises(InputError, match=r"spk/a: .*the reference is 100.0 ms longer"):
        evaluate_folders(root / "ref", short, log=lambda line: None)
    duplicate = tmp_path / "duplicate"
    write(duplicate / "x.wav", np.ones(10))
    write(duplicate / "x.flac", np.ones(10))
    with pytest.raises(InputError, match="share the name 'x'"):
        evaluate_folders(root / "ref", duplicate)


def test_undefined_metric_is_recorded_not_fatal(corpus: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = corpus["root"]
    est = tmp_path / "est"
    write(est / "spk" / "a.wav", np.zeros(32000))  # a silent output: SI-SDR and PESQ undefined
    write(est / "spk" / "b.wav", corpus["signals"]["spk/b"][0])
    result = evaluate_folders(root / "ref", est)
    assert math.isnan(result.rows[0]["si_sdr"]) and "estimate is silent" in result.rows[0]["errors"]
    assert result.summary["pesq_wb"]["n"] == 1 and result.summary["pesq_wb"]["excluded"] == 1
    assert result.summary["si_sdr"]["n"] == 0 and result.summary["si_sdr"]["excluded"] == 2  # +inf for the exact copy
    assert "spk/a (est): si_sdr: SI-SDR is undefined: the estimate is silent" in capsys.readouterr().err


def test_wer_skip_messages_and_word_error_rate() -> None:
    transcriber, message = load_transcriber(None)
    assert transcriber is None and message.startswith("WER skipped: no ASR model given")
    transcriber, message = load_transcriber("nobody/no-such-asr-model")
    assert transcriber is None and message.startswith("WER skipped:") and "\n" not in message
    assert "no-such-asr-model" in message
    assert word_error_rate("bin blue at F two now.", "bin blue at two now please") == pytest.approx(2 / 6)
    assert word_error_rate("Lay red, by K seven", "lay red by k seven") == 0.0
    assert word_error_rate("a b c", "x y z w") == pytest.approx(4 / 3)


def test_wer_column_with_an_asr_model(corpus: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a transcriber available, WER uses <reference>.txt when present, else ASR of the reference."""
    root = corpus["root"]
    (root / "ref" / "spk" / "a.txt").write_text("bin blue at f two now\n")
    answers = iter(["bin blue at two now", "lay red", "lay red by k"])  # est a; ref b (asr); est b

    class FakeTranscriber:
        model = "fake-asr"

        def __call__(self, audio: np.ndarray) -> str:
            return next(answers)

    monkeypatch.setattr(folders_module, "load_transcriber", lambda model: (FakeTranscriber(), ""))
    try:
        result = evaluate_folders(root / "ref", root / "est", asr_model="fake", log=lambda line: None)
    finally:
        (root / "ref" / "spk" / "a.txt").unlink()
    assert [row["wer"] for row in result.rows] == pytest.approx([1 / 6, 1.0])
    assert result.rows[1]["reference_text"] == "lay red"
    assert result.summary["wer"]["corpus"] == pytest.approx((1 + 2) / (6 + 2))
    assert "<reference>.txt and ASR of the reference audio" in result.notes[-1]


def test_noisereduce_folder(corpus: dict, tmp_path: Path) -> None:
    pytest.importorskip("noisereduce")
    root = corpus["root"]
    out = noisereduce_folder(root / "noisy", tmp_path / "nr")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    assert files == ["c.wav", "spk/a.wav", "spk/b.wav"]
    enhanced = load_audio(out / "spk" / "a.wav")
    noisy = load_audio(root / "noisy" / "spk" / "a.wav")
    assert enhanced.shape == noisy.shape and not np.allclose(enhanced, noisy, atol=1e-3)
    stamp = (out / "c.wav").stat().st_mtime_ns
    noisereduce_folder(root / "noisy", out)  # finished files are reused
    assert (out / "c.wav").stat().st_mtime_ns == stamp


def test_cli_writes_outputs_with_baselines(corpus: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("noisereduce")
    root = corpus["root"]
    output = tmp_path / "report" / "metrics.json"
    code = main(["evaluate", "--reference", str(root / "ref"), "--estimate", str(root / "est"), "--noisy",
                 str(root / "noisy"), "--output", str(output), "--baselines", "--no-progress", "--name", "model"])
    assert code == 0
    out = capsys.readouterr().out
    assert [line.split(" | ")[0] for line in out.splitlines()[2:5]] == ["| noisy", "| noisereduce", "| model"]
    document = json.loads(output.read_text())
    assert list(document["systems"]) == ["noisy", "noisereduce", "model"]
    assert document["systems"]["noisereduce"]["si_sdr"]["n"] == 2  # the same files as the model
    assert document["settings"]["command"] == "evaluate" and "noisereduce" in document["settings"]
    assert (tmp_path / "report" / "metrics.csv").is_file() and (tmp_path / "report" / "metrics.md").is_file()
    assert (tmp_path / "report" / "metrics_noisereduce" / "c.wav").is_file()


def test_cli_user_errors_are_one_line(corpus: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = corpus["root"]
    assert main(["evaluate", "--reference", str(root / "ref"), "--estimate", str(root / "est"), "--baselines"]) == 2
    expected = "avdiff evaluate: error: --baselines needs --noisy (noisereduce runs on the noisy inputs)"
    assert capsys.readouterr().err.strip() == expected
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--reference", str(tmp_path / "empty"), "--estimate", str(root / "est")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "reference folder" in err and "holds no audio files" in err


def test_evaluation_result_is_constructible_for_the_demo() -> None:
    result = EvaluationResult(name="x", rows=[{"id": "a", "si_sdr": 1.0}], summary={"si_sdr": mean_ci95([1.0])})
    assert result.systems() == {"x": {"si_sdr": {"mean": 1.0, "ci95": None, "n": 1}}}


def test_transcripts_score_the_recogniser_on_the_references_alone(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The clean-speech row: WER of the recogniser on each reference against its .txt; no signal
    metric (the reference against itself), so nothing is left out of a mean."""
    from avdiff.evaluation import evaluate_transcripts

    rng = np.random.default_rng(1)
    for name in ("a", "b", "c"):
        write(tmp_path / "ref" / f"{name}.wav", 0.1 * rng.standard_normal(SR))
    (tmp_path / "ref" / "a.txt").write_text("bin blue at f two now\n")
    (tmp_path / "ref" / "b.txt").write_text("lay red by k\n")  # c has no transcript
    answers = iter(["bin blue at two now", "lay red by k"])

    class FakeTranscriber:
        model = "fake-asr"

        def __call__(self, audio: np.ndarray) -> str:
            return next(answers)

    monkeypatch.setattr(folders_module, "load_transcriber", lambda model: (FakeTranscriber(), ""))
    logged: list[str] = []
    result = evaluate_transcripts(tmp_path / "ref", "fake", name="clean speech", log=logged.append)
    assert [row["wer"] for row in result.rows] == pytest.approx([1 / 6, 0.0])
    assert result.summary["wer"]["corpus"] == pytest.approx(1 / 10) and "c" in result.unusable
    assert not any(key in result.summary for key in ("si_sdr", "pesq_wb", "stoi"))
    assert logged == ["evaluate: not evaluated: c: no c.txt beside it to score the recogniser against"]
    paths = result.write(tmp_path / "clean.json")
    assert "si_sdr" not in paths["csv"].read_text() and "Left out of the means" not in paths["markdown"].read_text()
    monkeypatch.undo()
    skipped = evaluate_transcripts(tmp_path / "ref", None, log=logged.append)  # no recogniser: nothing to show
    assert skipped.summary == {} and skipped.notes[0].startswith("WER skipped")
