"""`avdiff demo`: the embedded default end to end (see avdiff.demo.runner)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from avdiff.demo.runner import DEFAULT_CONFIG, DemoSettings, run_demo
from avdiff.pipeline.posterior_settings import METHOD_CHOICES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo", help="synthetic corpus -> training -> video-to-speech and enhancement -> metrics -> report",
        description="Run the whole pipeline on the embedded synthetic corpus and write DIR/report.md and "
        "DIR/report.html. Re-running the same command continues where it stopped.")
    parser.add_argument("--output", type=Path, required=True, help="demo folder")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="training recipe: a packaged recipe's name or a YAML file "
                        "(default: the packaged synth-cpu; use --config synth-gpu on a GPU)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key (repeatable)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--num-utterances", type=int, default=800, help="size of the synthetic corpus")
    parser.add_argument("--workers", type=int, default=2, help="corpus synthesis processes")
    parser.add_argument("--max-steps", type=int, default=None, help="training steps (default: the config's)")
    parser.add_argument("--max-train-minutes", type=float, default=15.0, help="training time budget")
    parser.add_argument("--test-clips", type=int, default=6, help="held-out clips generated and enhanced")
    parser.add_argument("--snr", type=float, nargs="+", default=[0.0, 5.0], help="mixture SNRs in dB")
    parser.add_argument("--method", choices=METHOD_CHOICES, default="udiffse+", help="enhancement method or preset")
    parser.add_argument("--generate-steps", type=int, default=None, help="sampler levels for video-to-speech")
    parser.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance for video-to-speech")
    parser.add_argument("--enhance-steps", type=int, default=None, help="levels of the posterior sampler")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = DemoSettings(
        output=args.output, config=args.config, overrides=args.overrides, device=args.device,
        num_utterances=args.num_utterances, seed=args.seed, workers=args.workers, max_steps=args.max_steps,
        max_train_minutes=args.max_train_minutes, test_clips=args.test_clips, snrs=tuple(args.snr),
        method=args.method, generate_steps=args.generate_steps, enhance_steps=args.enhance_steps,
        guidance=args.guidance)
    report = run_demo(settings)
    print(f"report: {report} (and {report.with_suffix('.html')})")
    return 0
