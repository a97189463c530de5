"""The Gradio page of `avdiff serve`: a video-to-speech tab and an enhancement tab.

The page only lays out controls and players; `avdiff.serve.handlers` does the work. When the page
opens, the settings controls are filled with each model's own values (which loads the models,
once). The sampler's tqdm bars drive the progress bar (`gr.Progress(track_tqdm=True)`); a failed
request shows its message in the tab's message box and as a warning pop-up, never a traceback.
Each tab offers examples to click (`avdiff.serve.examples`: a synthetic clip's mouth crops and a
noisy mixture of its speech, made by the package when the server starts).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from avdiff.diffusion.samplers import SAMPLERS
from avdiff.media.files import MOUTH_ARRAY_SUFFIX, VIDEO_INPUT_SUFFIXES
from avdiff.posterior.registry import METHODS
from avdiff.serve.examples import SNR_DB, ServeExamples, examples_or_none
from avdiff.serve.handlers import (
    Outcome,
    Pipelines,
    ServeSettings,
    enhance_speech,
    enhancement_defaults,
    error_message,
    generate_speech,
    generation_defaults,
    run_safely,
)

MODEL_DEFAULT = ""  # a dropdown's value for "the model's own setting"


def _shown(message: str, failed: bool) -> str:
    """The message box's text; a failure also pops up as a warning."""
    if failed:
        gr.Warning(message)
    return message


def _settings_controls(first_label: str, choices: list[str]) -> list[Any]:
    """A sampler/method dropdown, steps, guidance and seed (filled with the model's own values
    when the page opens; 0 steps or the dropdown's first entry also mean the model's)."""
    choice = gr.Dropdown([("the model's", MODEL_DEFAULT), *choices], value=MODEL_DEFAULT, label=first_label)
    steps = gr.Number(value=0, precision=0, minimum=0, label="steps = noise levels per pass (0: the model's)")
    guidance = gr.Number(label="classifier-free guidance scale w")
    seed = gr.Number(value=0, precision=0, label="seed")
    return [choice, steps, guidance, seed]


def _filler(read: Callable[[], tuple], count: int) -> Callable[..., tuple]:
    """A callback setting `count` controls to `read(...)`, or leaving them with the error shown in
    the message box (the callback's last output)."""

    def fill(*values: Any) -> tuple:
        try:
            return (*read(*values), gr.skip())
        except Exception as error:  # noqa: BLE001 - shown on the page, never a traceback
            return (*[gr.skip()] * count, _shown(error_message(error), True))

    return fill


def _results(prefix: str, input_label: str | None) -> list[Any]:
    """Input and output players, the spectrograms and the message box of a tab."""
    players = []
    with gr.Row():
        if input_label is not None:
            players.append(gr.Audio(label=input_label, interactive=False, elem_id=f"{prefix}-input"))
        players.append(gr.Audio(label="output", interactive=False, elem_id=f"{prefix}-output"))
    figure = gr.Plot(label="spectrograms: input | output", elem_id=f"{prefix}-spectrograms")
    message = gr.Textbox(label="message", interactive=False, lines=2, elem_id=f"{prefix}-message")
    return [*players, figure, message]


def _outputs(outcome: Outcome, with_input: bool) -> tuple:
    """An Outcome as the tab's outputs (see `_results`)."""
    audio = (outcome.input_audio, outcome.output_audio) if with_input else (outcome.output_audio,)
    return (*audio, outcome.figure, _shown(outcome.message, outcome.failed))


def _offer(examples: list[list[str | None]], inputs: list[Any], labels: list[str], elem_id: str) -> None:
    """Examples that fill `inputs` when clicked (the user then presses the tab's button)."""
    gr.Examples(examples, inputs, label="Examples (made by avdiff: a synthetic clip)", example_labels=labels,
                cache_examples=False, elem_id=elem_id)


def video_to_speech_tab(app: gr.Blocks, pipelines: Pipelines, examples: ServeExamples | None = None) -> None:
    """Tab 1: a talking-face video (uploaded or recorded) or mouth crops -> speech from the lips."""
    with gr.Row():
        with gr.Column():
            video = gr.Video(sources=["upload", "webcam"], label="talking-face video", elem_id="v2s-video")
            crops = gr.File(file_types=[MOUTH_ARRAY_SUFFIX], label="or mouth crops (.npy from avdiff prepare)",
                            height=120, elem_id="v2s-npy")
            if examples is not None:
                _offer([[str(examples.mouth)]], [crops], [f"mouth crops: “{examples.text}”"], "v2s-examples")
        with gr.Column():
            settings = _settings_controls("sampler", sorted(SAMPLERS))
            button = gr.Button("Generate speech", variant="primary", elem_id="v2s-run")
    outputs = _results("v2s", "original sound track")

    def run(video: str | None, crops: str | None, sampler: str, steps: float | None, guidance: float | None,
            seed: float | None, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
        progress(0, desc="loading the model")
        outcome = run_safely(generate_speech, pipelines, video, crops, sampler, steps, guidance, seed,
                             show_progress=True)
        return _outputs(outcome, with_input=True)

    button.click(run, [video, crops, *settings], outputs)
    app.load(_filler(lambda: generation_defaults(pipelines), 3), None, [*settings[:3], outputs[-1]])


def enhancement_tab(app: gr.Blocks, pipelines: Pipelines, examples: ServeExamples | None = None) -> None:
    """Tab 2: noisy speech (uploaded or recorded), optionally with lip video -> enhanced speech."""
    with gr.Row():
        with gr.Column():
            noisy = gr.Audio(sources=["upload", "microphone"], type="filepath", label="noisy speech",
                             elem_id="enh-noisy")
            video = gr.File(file_types=list(VIDEO_INPUT_SUFFIXES), label="lip video or mouth crops (optional)",
                            height=120, elem_id="enh-video")
            if examples is not None:
                mixture = f"“{examples.text}” in noise at {SNR_DB:g} dB SNR"
                _offer([[str(examples.noisy), None], [str(examples.noisy), str(examples.mouth)]], [noisy, video],
                       [mixture, f"{mixture}, with its mouth crops"], "enh-examples")
        with gr.Column():
            settings = _settings_controls("method", METHODS.names())
            button = gr.Button("Enhance", variant="primary", elem_id="enh-run")
    outputs = _results("enh", None)

    def run(noisy: str | None, video: str | None, method: str, steps: float | None, guidance: float | None,
            seed: float | None, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple:
        progress(0, desc="loading the model")
        outcome = run_safely(enhance_speech, pipelines, noisy, video, method, steps, guidance, seed,
                             show_progress=True)
        return _outputs(outcome, with_input=False)

    button.click(run, [noisy, video, *settings], outputs)
    app.load(_filler(lambda: enhancement_defaults(pipelines), 3), None, [*settings[:3], outputs[-1]])
    # Another method may bring its own steps (a preset such as udiffse-paper).
    settings[0].input(_filler(lambda method: enhancement_defaults(pipelines, method)[1:2], 1), settings[0],
                      [settings[1], outputs[-1]])


def build_app(settings: ServeSettings, examples_folder: Path | None = None) -> gr.Blocks:
    """The page over `settings`' models; each is loaded when first needed and kept. The examples
    are made in `examples_folder` (default: `avdiff.serve.examples.default_folder()`) if not there yet."""
    pipelines = Pipelines(settings)
    examples = examples_or_none(examples_folder)
    with gr.Blocks(title="avdiff", analytics_enabled=False) as app:
        gr.Markdown(f"## avdiff: speech from lips, and speech enhancement\nVideo-to-speech model: "
                    f"`{settings.generator}`; enhancement model: `{settings.enhancer}`.")
        with gr.Tab("Video-to-speech", elem_id="tab-v2s"):
            video_to_speech_tab(app, pipelines, examples)
        with gr.Tab("Enhancement", elem_id="tab-enhance"):
            enhancement_tab(app, pipelines, examples)
    return app
