"""How well can the lips predict the speech envelope when the lip encoder is trained on that alone?

Issue 13's diagnosis: the shipped `v2s` speaks with WER 0.25 given the clean speech's own log-mel
envelope but 0.55-0.58 given the one its tiny lip encoder predicts (validation error 0.040 after
73 minutes of joint training). This trains a lip encoder on the envelope loss only
(`AVDiffusionModel.envelope_loss`, the training's own), no score network, so a step costs a
fraction of a joint one, and logs the validation envelope error against wall-clock minutes: is a
bigger encoder, or the same one trained alone, the lever?

    .venv/bin/python -m benchmarks.quality.envelope_probe --config configs/v2s-cpu.yaml \\
        --train data/synth-v2s/train.jsonl --valid data/synth-v2s/valid.jsonl \\
        --encoder tiny --minutes 12 --reference models/v2s --output benchmarks/results/envelope-probe/tiny

`--encoder` is a lip encoder preset name (tiny, small, base); rows.jsonl gets one row per evaluation (record.json
the same rows with the run's provenance), and the trained encoder is saved in OUTPUT/lip_encoder
(`benchmarks/quality/lips_matter.py --envelope-encoder`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from avdiff.config import AVDiffConfig, load_config
from avdiff.data.crops import AVCropDataset, collate_crops
from avdiff.diffusion.formulation import build_formulation
from avdiff.models.lip_encoder import LIP_ENCODER_PRESETS, LipEncoder
from avdiff.training.model import AVDiffusionModel
from benchmarks.common.record import record



def build(args: argparse.Namespace) -> tuple[AVDiffusionModel, AVDiffConfig]:
    """The training's model (for its transform and envelope loss) with the chosen lip encoder."""
    config = load_config(AVDiffConfig, args.config, [f"data.train_manifest={args.train}"])
    model = AVDiffusionModel.from_config(config, build_formulation(config.diffusion, sigma_data=0.1))
    preset = LIP_ENCODER_PRESETS[args.encoder]
    bands = config.lip_encoder.envelope_bands
    model.lip_encoder = LipEncoder(**{**preset, "output_dim": config.lip_encoder.output_dim, "envelope_bands": bands})
    return model, config


def envelope_error(model: AVDiffusionModel, batch: dict[str, Any]) -> torch.Tensor:
    """The training's envelope loss of one batch of crops."""
    spec = model.transform.encode(batch["audio"])
    embeddings = model.encode_lips(batch["video"], batch["video_valid"], batch["face_ok"])
    return model.envelope_loss(spec, embeddings, batch["face_ok"] & batch["video_valid"], batch["frame_mask"])


@torch.no_grad()
def validate(model: AVDiffusionModel, batches: list[dict[str, Any]]) -> float:
    model.eval()
    errors = [float(envelope_error(model, batch)) for batch in batches]
    model.train()
    return sum(errors) / len(errors)


def run(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    model, config = build(args)
    train_set = AVCropDataset(args.train, config.data, config.spectrogram, train=True)
    valid_set = AVCropDataset(args.valid, config.data, config.spectrogram, train=False)
    step_of = range(0, len(valid_set), max(1, len(valid_set) // args.valid_items))
    valid = list(DataLoader([valid_set[i] for i in step_of][: args.valid_items], batch_size=8, collate_fn=collate_crops))
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, collate_fn=collate_crops, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.lip_encoder.parameters(), lr=args.lr, weight_decay=0.01)
    args.output.mkdir(parents=True, exist_ok=True)
    rows = args.output / "rows.jsonl"
    rows.write_text("")
    if args.reference is not None:  # the same validation error of a trained model's lip encoder
        trained = LipEncoder.from_pretrained(args.reference / "lip_encoder")
        own, model.lip_encoder = model.lip_encoder, trained
        row = {"encoder": f"reference {args.reference}", "val_envelope": validate(model, valid)}
        model.lip_encoder = own
        print(json.dumps(row), flush=True)
        rows.write_text(json.dumps(row) + "\n")
    params = sum(p.numel() for p in model.lip_encoder.parameters())
    start, step, deadline = time.monotonic(), 0, time.monotonic() + 60 * args.minutes
    while time.monotonic() < deadline:
        for batch in loader:
            loss = envelope_error(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if step % args.eval_every == 0 or time.monotonic() >= deadline:
                row = {"encoder": args.encoder, "parameters": params, "step": step,
                       "minutes": round((time.monotonic() - start) / 60, 2), "train_envelope": float(loss.detach()),
                       "val_envelope": validate(model, valid)}
                print(json.dumps(row), flush=True)
                with open(rows, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
            if time.monotonic() >= deadline:
                break
    model.lip_encoder.save_pretrained(args.output / "lip_encoder")  # for lips_matter.py --envelope-encoder
    record(args.output, args, {"rows": [json.loads(line) for line in rows.read_text().splitlines()]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("configs/v2s-cpu.yaml"))
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--valid", type=Path, required=True)
    parser.add_argument("--encoder", default="tiny", choices=list(LIP_ENCODER_PRESETS))
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--valid-items", type=int, default=64)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--reference", type=Path, default=None,
                        help="model folder whose lip encoder is scored on the same validation crops first")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
