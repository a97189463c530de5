"""`avdiff demo`: the embedded default end to end (see avdiff.demo.runner)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from avdiff.commands import summary
from avdiff.demo.settings import NO_SHIPPED_MODEL, DemoSettings
from avdiff.posterior.registry import METHODS


def register(subparsers: argparse._SubParsersAction) -> None:
    """The `demo` sub-command; its defaults are DemoSettings'."""
    default = DemoSettings(output=Path("."))
    parser = subparsers.add_parser(
        "demo", help=summary("demo"),
        description="Run the whole pipeline on the embedded synthetic corpus: the shipped model and a model "
        "trained here for a fixed number of steps, side by side, in DIR/report.md and DIR/report.html. "
        "Re-running the same command continues where it stopped.")
    parser.add_argument("--output", type=Path, required=True, help="demo folder")
    parser.add_argument("--config", type=Path, default=default.config,
                        help="training recipe: a packaged recipe's name or a YAML file "
                        "(default: the packaged synth-cpu; use --config synth-gpu on a GPU)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num-utterances", type=int, default=default.num_utterances,
                        help="size of the synthetic corpus")
    parser.add_argument("--workers", type=int, default=default.workers, help="corpus synthesis processes")
    parser.add_argument("--max-steps", type=int, default=default.max_steps,
                        help="training steps (default: the config's training.max_steps)")
    parser.add_argument("--max-train-minutes", type=float, default=default.max_train_minutes,
                        help="also stop training after this many minutes (default: no time limit, so the result "
                        "does not depend on how busy the machine is)")
    parser.add_argument("--shipped-model", default=default.shipped_model, metavar="NAME_OR_PATH",
                        help=f"the shipped model run beside the demo's own: a name in models/ (or $AVDIFF_MODELS) "
                        f"or a model folder; {NO_SHIPPED_MODEL!r} runs the demo's own model only "
                        f"(default: {default.shipped_model})")
    parser.add_argument("--test-clips", type=int, default=default.test_clips,
                        help="held-out clips generated and enhanced")
    parser.add_argument("--snr", type=float, nargs="+", default=list(default.snrs), help="mixture SNRs in dB")
    parser.add_argument("--method", choices=METHODS.names(), default=default.method, help="enhancement method or preset")
    parser.add_argument("--generate-steps", type=int, default=default.generate_steps,
                        help="sampler levels for video-to-speech")
    parser.add_argument("--guidance", type=float, default=default.guidance,
                        help="classifier-free guidance for video-to-speech")
    parser.add_argument("--enhance-steps", type=int, default=default.enhance_steps,
                        help="levels of the posterior sampler")
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run (or continue) the demo and print where its report is."""
    settings = DemoSettings(
        output=args.output, config=args.config, overrides=args.overrides, device=args.device,
        num_utterances=args.num_utterances, seed=args.seed, workers=args.workers, max_steps=args.max_steps,
        max_train_minutes=args.max_train_minutes, shipped_model=args.shipped_model, test_clips=args.test_clips,
        snrs=tuple(args.snr), method=args.method, generate_steps=args.generate_steps,
        enhance_steps=args.enhance_steps, guidance=args.guidance)
    from avdiff.demo.runner import run_demo  # training and models load only when the demo runs

    report = run_demo(settings)
    print(f"report: {report} (and {report.with_suffix('.html')})")
    return 0
