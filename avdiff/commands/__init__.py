"""Sub-commands of the `avdiff` command line, one module each.

Each module exposes `register(subparsers) -> None`, which adds its parser (with the one-line
summary of `COMMANDS`) and sets `func(args) -> int` as the parser default. `COMMANDS` lists them
in the order `avdiff --help` does, with their summaries, so the top-level help is written
without importing any of them (or torch): `avdiff.cli` imports only the command that runs.
"""

from __future__ import annotations

# name -> (module, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("avdiff.commands.config", "validate a config and print it resolved (every key, with its comment)"),
    "prepare": ("avdiff.commands.prepare", "turn a raw talking-face corpus (or clean speech) into mouth ROIs + "
                "16 kHz audio + manifest.jsonl"),
    "synth": ("avdiff.commands.synth", "make a synthetic audio-visual speech corpus (espeak-ng speech + rendered "
              "mouth video)"),
    "split": ("avdiff.commands.split", "split a prepared manifest by speaker into train / valid / test"),
    "train": ("avdiff.commands.train", "train the lip encoder and score network (one CPU, GPUs or machines via "
              "accelerate launch)"),
    "export": ("avdiff.commands.export", "write a model folder from a training checkpoint (EMA weights)"),
    "mouth-model": ("avdiff.commands.mouth_model", "fit the Gaussian of the lip encoder's training mouth crops into "
                    "a model folder (frames that show no mouth become unreliable)"),
    "generate": ("avdiff.commands.generate", "generate speech from silent video (video-to-speech)"),
    "enhance": ("avdiff.commands.enhance", "enhance noisy speech by diffusion posterior sampling or a VAE speech "
                "model (with or without video)"),
    "extract": ("avdiff.commands.extract", "extract the talker whose lips a video shows from a mixture of talkers "
                "and noise"),
    "evaluate": ("avdiff.commands.evaluate", "SI-SDR, PESQ, STOI/ESTOI, LSD (and WER) of estimates against "
                 "references"),
    "demo": ("avdiff.commands.demo", "synthetic corpus -> shipped model and a short training -> video-to-speech "
             "and enhancement -> metrics -> report"),
    "serve": ("avdiff.commands.serve", "a web page to try the models: speech from lip video, enhancement of noisy "
              "speech"),
    "env": ("avdiff.commands.env", "print versions, device, threads, registered components, plug-ins, models and "
            "caches (for bug reports)"),
}


# Commands whose --video may be one video file: its mouth front-end starts before the command's
# imports (`avdiff.commands.common.start_mouth_prefetch`, from `avdiff.cli`).
COMMANDS_WITH_VIDEO = ("generate", "enhance", "extract")

# One-shot jobs whose every output is written and closed before the command returns: run from the
# console script they end the process at once after its exit handlers (`avdiff.cli.entry_point`).
QUICK_EXIT_COMMANDS = ("generate", "enhance", "extract", "evaluate")


def summary(name: str) -> str:
    """The one-line summary of command `name` (its `help` in `avdiff --help`)."""
    return COMMANDS[name][1]
