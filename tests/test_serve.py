"""`avdiff serve`: the handlers without a browser, then the real command driven in headless Chromium.

The browser tests start `python -m avdiff serve` on a free port over a tiny random model (a
second of sampling), open the page with Playwright in the system's Chromium (never a downloaded
browser), submit files through the upload inputs, and check that the audio that comes back is the
handlers' audio, is loaded by the page's player and plays; and that a broken file gives a message,
not a traceback. They skip, saying why, where Playwright or Chromium is missing.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from avdiff.cli import main
from avdiff.serve.handlers import (
    Outcome,
    Pipelines,
    ServeSettings,
    enhance_speech,
    enhancement_defaults,
    generate_speech,
    generation_defaults,
    run_safely,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
SERVER_START_S = 90  # importing torch and gradio on a loaded 2-core machine
# Every <audio> under an element, shadow roots included (the waveform player keeps its own there),
# as the first one with a source: {src, readyState, duration, currentTime, ended} or null.
AUDIO_STATE_JS = """(root) => {
  const found = [];
  const walk = (node) => {
    node.querySelectorAll('audio').forEach((a) => found.push(a));
    node.querySelectorAll('*').forEach((el) => el.shadowRoot && walk(el.shadowRoot));
  };
  walk(root);
  const a = found.find((a) => a.src);
  return a ? {src: a.src, readyState: a.readyState, duration: a.duration, currentTime: a.currentTime,
              ended: a.ended} : null;
}"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random audio-visual model folder (3 heun steps: sampling takes well under a second)."""
    from avdiff.pipeline import save_model_folder
    from tinymodels import tiny_components

    return save_model_folder(tiny_components(), tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Mouth crops (1 s), a noisy mono recording, a stereo 22.05 kHz one and random bytes named .wav."""
    folder = tmp_path_factory.mktemp("serve-inputs")
    rng = np.random.default_rng(0)
    paths = {name: folder / name for name in ("mouth.npy", "noisy.wav", "stereo.wav", "broken.wav")}
    np.save(paths["mouth.npy"], rng.integers(0, 255, (25, 40, 40), dtype=np.uint8))
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)
    sf.write(paths["noisy.wav"], (tone + rng.normal(0, 0.05, 16000)).astype(np.float32), 16000)
    sf.write(paths["stereo.wav"], rng.normal(0, 0.1, (11025, 2)).astype(np.float32), 22050)
    paths["broken.wav"].write_bytes(rng.bytes(4000))
    return paths


@pytest.fixture(scope="module")
def pipelines(tiny_model: Path) -> Pipelines:
    return Pipelines(ServeSettings(generator=str(tiny_model), enhancer=str(tiny_model), device="cpu"))


# ---------------------------------------------------------------- handlers, no browser
def test_generate_gives_speech_of_the_clips_duration_and_a_figure(pipelines, files):
    outcome = run_safely(generate_speech, pipelines, None, str(files["mouth.npy"]), seed=3)
    assert not outcome.failed, outcome.message
    rate, audio = outcome.output_audio
    assert (rate, audio.dtype, audio.shape) == (16000, np.int16, (16000,))  # 25 frames = 1 s
    assert np.abs(audio).max() > 0 and outcome.input_audio is None  # mouth crops have no sound track
    assert len(outcome.figure.axes) == 1 and "sampler heun, 3 steps, guidance 1" in outcome.message
    assert "seed 3" in outcome.message
    again = generate_speech(pipelines, None, str(files["mouth.npy"]), seed=3)
    other = generate_speech(pipelines, None, str(files["mouth.npy"]), seed=4)
    assert np.array_equal(again.output_audio[1], audio) and not np.array_equal(other.output_audio[1], audio)


def test_enhance_keeps_rate_length_and_channels(pipelines, files):
    mono = enhance_speech(pipelines, str(files["noisy.wav"]), steps=2)
    assert mono.output_audio[0] == 16000 and mono.output_audio[1].shape == (16000,)
    assert "(audio-only): udiffse+, 2 steps x 2 samples, guidance 1" in mono.message and len(mono.figure.axes) == 2
    stereo = enhance_speech(pipelines, str(files["stereo.wav"]), steps=2, method="dps")
    assert stereo.output_audio[0] == 22050 and stereo.output_audio[1].shape == (11025, 2)
    assert stereo.input_audio[1].shape == (11025, 2) and "dps" in stereo.message


def test_the_controls_start_at_the_models_own_settings(pipelines):
    assert generation_defaults(pipelines) == ("heun", 3, 1.0)
    method, steps, _ = enhancement_defaults(pipelines)
    assert method == "udiffse+" and steps == pipelines.get(pipelines.settings.enhancer).enhancement_plan().settings.steps
    assert enhancement_defaults(pipelines, "udiffse-paper")[:2] == ("udiffse-paper", 30)  # the preset's own steps
    assert pipelines.loaded() == [str(pipelines.settings.generator)]  # one folder, loaded once


@pytest.mark.parametrize("case", ["broken", "nothing", "both", "steps", "seed"])
def test_bad_requests_give_a_message(pipelines, files, case):
    requests = {
        "broken": (enhance_speech, str(files["broken.wav"]), None, "cannot open"),
        "nothing": (generate_speech, None, None, "upload or record"),
        "both": (generate_speech, str(files["noisy.wav"]), str(files["mouth.npy"]), "not both"),
        "steps": (generate_speech, None, str(files["mouth.npy"]), "whole number >= 1"),
        "seed": (enhance_speech, str(files["noisy.wav"]), None, "seed must be a whole number"),
    }
    task, first, second, expected = requests[case]
    options = {"steps": 2.5} if case == "steps" else {"seed": 0.5} if case == "seed" else {}
    outcome = run_safely(task, pipelines, first, second, **options)
    assert outcome.failed and outcome.message.startswith("Error: ") and expected in outcome.message
    assert str(files["broken.wav"].parent) not in outcome.message  # the upload's name, not the server's path
    assert outcome.output_audio is None


def test_unexpected_errors_are_one_line_without_traceback():
    def crash() -> Outcome:
        raise RuntimeError("CUDA out of memory.\n  Tried to allocate " + "x" * 2000)

    message = run_safely(crash).message
    assert message.startswith("Error: the request failed (RuntimeError: CUDA out of memory. Tried")
    assert "\n" not in message and len(message) < 500 and "Traceback" not in message


def test_serve_binds_to_this_machine_by_default():
    from avdiff.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.model, args.enhancer_model) == ("127.0.0.1", "v2s-context", "speech-prior")


def test_serve_without_gradio_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "avdiff.serve.app", raising=False)
    assert main(["serve"]) == 2
    assert "pip install 'avdiff[serve]'" in capsys.readouterr().err


def test_serve_refuses_a_missing_model_before_serving(capsys, tmp_path):
    pytest.importorskip("gradio", reason="the serve extra (gradio) is not installed")
    assert main(["serve", "--enhancer-model", str(tmp_path / "none")]) == 2
    assert "--enhancer-model" in capsys.readouterr().err


# ---------------------------------------------------------------- the real command in a real browser
def _chromium() -> str | None:
    """The system's Chromium ($AVDIFF_CHROMIUM, else the first of CHROMIUM_NAMES on PATH)."""
    return os.environ.get("AVDIFF_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(process: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"avdiff serve exited ({process.returncode}):\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"avdiff serve did not answer on {url} within {SERVER_START_S} s")


def _outward_address() -> str | None:
    """This machine's address on its outward interface (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture(scope="module")
def server(tiny_model: Path) -> Iterator[str]:
    """`python -m avdiff serve` over the tiny model, on a free port of 127.0.0.1: its URL."""
    pytest.importorskip("gradio", reason="the serve extra (gradio) is not installed: pip install 'avdiff[serve]'")
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "-m", "avdiff", "serve", "--model", str(tiny_model),
                                "--enhancer-model", str(tiny_model), "--port", str(port), "--device", "cpu"],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_until_serving(process, f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def page(request: pytest.FixtureRequest) -> Iterator:
    """A page of the app in headless Chromium (the system's; skipped, before the server starts,
    where there is none)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install 'avdiff[serve]'")
    executable = _chromium()
    if executable is None:
        pytest.skip(f"no Chromium on this machine (looked for {', '.join(CHROMIUM_NAMES)} on PATH and $AVDIFF_CHROMIUM; "
                    "apt-get install chromium)")
    server = request.getfixturevalue("server")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(30_000)
        page.goto(server)
        page.wait_for_selector("#v2s-run")
        yield page
        browser.close()


def test_the_server_answers_on_this_machine_only(server):
    port = int(server.rstrip("/").rsplit(":", 1)[1])
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback to try")
    with pytest.raises(OSError):
        socket.create_connection((address, port), timeout=3).close()


def _message(page, prefix: str) -> str:
    """The tab's message once the request has finished."""
    page.wait_for_function(f"document.querySelector('#{prefix}-message textarea').value.length > 0")
    return page.input_value(f"#{prefix}-message textarea")


def _served_wav(page, prefix: str) -> tuple[np.ndarray, int]:
    """The output file the page offers for download, as int16 samples."""
    href = page.get_attribute(f"#{prefix}-output a[download]", "href")
    data, rate = sf.read(io.BytesIO(page.request.get(href).body()), dtype="int16")
    return data, rate


def _audio_state(page, prefix: str) -> dict | None:
    return page.locator(f"#{prefix}-output").evaluate(AUDIO_STATE_JS)


def _wait_for(read: Callable[[], Any], done: Callable[[Any], bool], what: str, timeout_s: float = 20) -> Any:
    """Poll `read()` until `done(value)`; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout_s
    while not done(value := read()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout_s} s (last state {value})")
        time.sleep(0.1)
    return value


def test_page_generates_speech_that_plays(page, pipelines, files):
    page.wait_for_function("document.querySelector('#tab-v2s input[type=number]')?.value === '3'")  # model's steps
    page.set_input_files("#v2s-npy input[type=file]", str(files["mouth.npy"]))
    page.click("#v2s-run")
    message = _message(page, "v2s")
    assert message.startswith("1.00 s of speech from mouth.npy") and "heun, 3 steps" in message
    served, rate = _served_wav(page, "v2s")
    expected = generate_speech(pipelines, None, str(files["mouth.npy"])).output_audio[1]
    assert rate == 16000 and served.shape == expected.shape
    assert np.abs(served.astype(int) - expected).max() <= 2  # the handlers' audio (threads may differ)
    state = _wait_for(lambda: _audio_state(page, "v2s"), lambda s: s and s["readyState"] >= 2, "the player loads")
    assert state["src"] and abs(state["duration"] - 1.0) < 0.05
    assert page.locator("#v2s-spectrograms img, #v2s-spectrograms svg, #v2s-spectrograms canvas").count() > 0
    page.click("#v2s-output button[aria-label='Play']")
    _wait_for(lambda: _audio_state(page, "v2s"), lambda s: s["currentTime"] > 0 or s["ended"], "the audio plays")


def test_page_enhances_and_says_what_is_wrong_with_a_broken_file(page, files):
    page.click("#tab-enhance-button")
    page.set_input_files("#enh-noisy input[type=file]", str(files["noisy.wav"]))
    page.fill("#tab-enhance input[type=number] >> nth=0", "2")
    page.click("#enh-run")
    message = _message(page, "enh")
    assert message.startswith("1.00 s enhanced") and "(audio-only): udiffse+, 2 steps" in message, message
    served, rate = _served_wav(page, "enh")
    assert rate == 16000 and served.shape == (16000,)

    page.click("#enh-noisy button[aria-label='Clear']")
    page.set_input_files("#enh-noisy input[type=file]", str(files["broken.wav"]))
    page.click("#enh-run")
    page.wait_for_function("document.querySelector('#enh-message textarea').value.startsWith('Error')")
    message = page.input_value("#enh-message textarea")
    assert "broken.wav: cannot open" in message and "Traceback" not in page.content()
