"""`avdiff serve` examples: a synthetic clip's mouth crops and a noisy mixture of its speech, made
by the package once, usable by the handlers, and offered on both tabs of the page."""

from __future__ import annotations


import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("gradio", reason="gradio is not installed (pip install 'avdiff[serve]')")

from avdiff.serve import examples as examples_module  # noqa: E402
from avdiff.serve.examples import ServeExamples, make_examples  # noqa: E402
from avdiff.timegrid import SAMPLE_RATE, SAMPLES_PER_FRAME  # noqa: E402


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> ServeExamples:
    return make_examples(tmp_path_factory.mktemp("serve-examples"))


def test_examples_are_a_clip_and_its_speech_in_noise(made):
    mouth = np.load(made.mouth, allow_pickle=False)
    assert mouth.dtype == np.uint8 and mouth.ndim == 3 and mouth.shape[1:] == (88, 88)
    assert len(mouth) >= 25 and mouth.std() > 0  # a second or more of a moving, visible mouth
    noisy, rate = sf.read(made.noisy, dtype="float32")
    assert rate == SAMPLE_RATE and noisy.ndim == 1 and len(noisy) == len(mouth) * SAMPLES_PER_FRAME
    lead_in = noisy[: SAMPLE_RATE // 5]  # the utterance starts with >= 0.25 s of (near) silence ...
    assert np.sqrt(np.mean(lead_in**2)) > 1e-3  # ... which the noise fills
    assert np.abs(noisy).max() > 0.05  # and speech is there


def test_examples_are_made_once(made, monkeypatch):
    stamps = [made.mouth.stat().st_mtime_ns, made.noisy.stat().st_mtime_ns]

    def no_synthesis(*args, **kwargs):
        raise AssertionError("synthesised again")

    monkeypatch.setattr("avdiff.synth.make_utterance", no_synthesis)
    again = make_examples(made.mouth.parent)
    assert again == made and [made.mouth.stat().st_mtime_ns, made.noisy.stat().st_mtime_ns] == stamps


def test_the_handlers_take_the_examples(made, tmp_path):
    from avdiff.pipeline import save_model_folder
    from avdiff.serve.handlers import Pipelines, ServeSettings, enhance_speech, generate_speech, run_safely
    from tinymodels import tiny_components

    model = save_model_folder(tiny_components(), tmp_path / "model")
    pipelines = Pipelines(ServeSettings(generator=str(model), enhancer=str(model), device="cpu"))
    generated = run_safely(generate_speech, pipelines, None, str(made.mouth), seed=1)
    assert not generated.failed, generated.message
    assert generated.output_audio[1].shape == (len(np.load(made.mouth)) * SAMPLES_PER_FRAME,)
    enhanced = run_safely(enhance_speech, pipelines, str(made.noisy), str(made.mouth), steps=2)
    assert not enhanced.failed and "audio-visual" in enhanced.message, enhanced.message


def _offered(app) -> list[list]:
    """The rows of every examples table on the page (a gr.Dataset per gr.Examples)."""
    import gradio as gr

    return [list(block.raw_samples) for block in app.blocks.values() if isinstance(block, gr.Dataset)]


def test_both_tabs_offer_the_examples(made, tmp_path):
    from avdiff.serve.app import build_app
    from avdiff.serve.handlers import ServeSettings

    tables = _offered(build_app(ServeSettings(device="cpu"), examples_folder=made.mouth.parent))
    assert tables == [[[str(made.mouth)]],
                      [[str(made.noisy), None], [str(made.noisy), str(made.mouth)]]]


def test_the_page_opens_without_examples_when_they_cannot_be_made(tmp_path, monkeypatch, caplog):
    from avdiff.serve.app import build_app
    from avdiff.serve.handlers import ServeSettings

    def no_espeak(*args, **kwargs):
        raise OSError("libespeak-ng.so: cannot open shared object file")

    monkeypatch.setattr("avdiff.synth.make_utterance", no_espeak)
    assert examples_module.examples_or_none(tmp_path / "none") is None
    assert "without examples" in caplog.text and "libespeak-ng" in caplog.text
    assert _offered(build_app(ServeSettings(device="cpu"), examples_folder=tmp_path / "none")) == []
