"""`avdiff serve`: the web demo (Gradio) over a video-to-speech and an enhancement model."""

from __future__ import annotations

import argparse

from avdiff.commands import summary
from avdiff.commands.common import add_runtime_arguments
from avdiff.errors import InputError
from avdiff.pipeline.shipped import DEFAULT_ENHANCER, DEFAULT_GENERATOR

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help=summary("serve"),
        description="Serve a Gradio page with two tabs: video-to-speech (upload or record a talking-face video, "
        "or upload mouth crops) and enhancement (noisy speech, optionally with lip video), with players, "
        "spectrograms and the sampling settings. Each model is loaded on first use. Needs the serve extra: "
        "pip install 'avdiff[serve]'.")
    parser.add_argument("--model", default=DEFAULT_GENERATOR,
                        help=f"video-to-speech model: a folder or a shipped model's name (default: {DEFAULT_GENERATOR})")
    parser.add_argument("--enhancer-model", default=DEFAULT_ENHANCER,
                        help=f"enhancement model: a folder or a shipped model's name (default: {DEFAULT_ENHANCER})")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 opens it to the network)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    add_runtime_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from avdiff.serve.app import build_app
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "gradio":
            raise
        raise InputError(f"avdiff serve needs Gradio ({error}); install it with: pip install 'avdiff[serve]'") from error
    from avdiff.pipeline.shipped import resolve_model
    from avdiff.serve.handlers import ServeSettings

    for flag, model in (("--model", args.model), ("--enhancer-model", args.enhancer_model)):
        if not resolve_model(model).is_dir():  # a wrong name or path fails now, not on the first request
            raise InputError(f"{flag} {model}: no such model folder")
    settings = ServeSettings(generator=args.model, enhancer=args.enhancer_model, device=args.device,
                             dtype=args.dtype, backend=args.backend, landmarks=args.landmarks,
                             landmark_weights=args.landmark_weights)
    print(f"avdiff serve: http://{args.host}:{args.port} (Ctrl+C stops it)")
    build_app(settings).launch(server_name=args.host, server_port=args.port, show_error=False, quiet=True)
    return 0
