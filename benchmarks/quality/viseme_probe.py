"""Do the lip features separate visemes? A linear probe on the synthetic corpus's phoneme timings.

For every video frame of `--clips` training and held-out clips of a corpus made by `avdiff synth`,
the label is the viseme of the phoneme sounding at the frame's centre (`alignments.jsonl`, the
corpus's own viseme table; `rest` between words). A multinomial logistic regression is fitted on
the lip embeddings of the training clips' frames and scored on the held-out clips' frames, for
each `--model` and for a randomly initialised encoder of the same preset (what the architecture
gives before any training). Accuracy is compared with always answering the commonest viseme, and
each viseme's recall is kept (the brief bilabial and labiodental closures are what the letters
need). `--test-corpus` scores another corpus instead of the training corpus's validation clips
(e.g. one of another seed: new faces and voices).

    .venv/bin/python -m benchmarks.quality.viseme_probe --model v2s --synth data/synth-v2s --clips 300
    .venv/bin/python -m benchmarks.quality.viseme_probe --model v2s --synth data/synth-v2s-32spk \
        --test-corpus data/synth-v2s-test

Prints the table; OUTPUT/record.json keeps its rows with the run's provenance.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.paths import default_output
from benchmarks.common.record import record


def frame_labels(phonemes: list, frames: int) -> list[str]:
    """The viseme sounding at each video frame's centre (`rest` where no phoneme sounds)."""
    from avdiff.data.phone_labels import sounding_phonemes
    from avdiff.synth.visemes import fallback_sequence

    return ["rest" if p is None else fallback_sequence(p)[0] for p in sounding_phonemes(phonemes, 0, frames)]


def read_alignments(corpus: Path) -> dict[str, list]:
    """item id -> its phoneme times, from `corpus`/alignments.jsonl."""
    from avdiff.data.phone_labels import read_alignments as read_phonemes

    return read_phonemes(corpus / "manifest.jsonl")


def features(encoder, items: list[dict], manifest: Path, alignments: dict) -> tuple[torch.Tensor, list[str]]:
    """Lip embeddings of every frame of `items` and their viseme labels."""
    from avdiff.data.manifest import resolve

    rows, labels = [], []
    with torch.inference_mode():
        for item in items:
            rois = torch.from_numpy(np.load(resolve(manifest, item["video"])))
            rows.append(encoder(rois.unsqueeze(0))[0].float())
            labels += frame_labels(alignments[item["id"]], len(rois))
    return torch.cat(rows), labels


def probe_accuracy(train: tuple[torch.Tensor, list[str]],
                   test: tuple[torch.Tensor, list[str]]) -> tuple[float, dict[str, float]]:
    """Held-out accuracy of a multinomial logistic regression on standardised features, and the
    recall of each viseme of the held-out frames."""
    classes = sorted(set(train[1]))
    index = {name: k for k, name in enumerate(classes)}
    mean, std = train[0].mean(0), train[0].std(0).clamp_min(1e-6)
    x, y = (train[0] - mean) / std, torch.tensor([index[name] for name in train[1]])
    layer = torch.nn.Linear(x.shape[1], len(classes))
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(x), y) + 1e-3 * layer.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    known = [k for k, name in enumerate(test[1]) if name in index]
    xt = (test[0][known] - mean) / std
    yt = torch.tensor([index[test[1][k]] for k in known])
    right = layer(xt).argmax(1) == yt
    recall = {name: float(right[yt == k].float().mean()) for k, name in enumerate(classes) if bool((yt == k).any())}
    return float(right.float().mean()), recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], help="model folder or shipped name (repeatable)")
    parser.add_argument("--synth", type=Path, required=True, help="corpus of avdiff synth (train/valid, alignments)")
    parser.add_argument("--clips", type=int, default=300, help="training clips for the probe (held out: 100)")
    parser.add_argument("--test-corpus", type=Path, default=None,
                        help="score the first 100 clips of this corpus's manifest.jsonl (its own alignments) "
                        "instead of --synth's valid.jsonl")
    parser.add_argument("--output", type=Path, default=default_output(__file__),
                        help="folder for record.json (default: %(default)s)")
    args = parser.parse_args()
    from avdiff.data.manifest import read_manifest
    from avdiff.models import LipEncoder
    from avdiff.pipeline.pipeline import AVDiffusionPipeline

    torch.manual_seed(0)
    alignments = read_alignments(args.synth)
    train_items = read_manifest(args.synth / "train.jsonl")[: args.clips]
    test_manifest = args.synth / "valid.jsonl" if args.test_corpus is None else args.test_corpus / "manifest.jsonl"
    test_items = read_manifest(test_manifest)[:100]
    if args.test_corpus is not None:
        alignments.update(read_alignments(args.test_corpus))
    encoders = {name: AVDiffusionPipeline.from_pretrained(name).lip_encoder.eval() for name in args.model}
    encoders["random tiny encoder"] = LipEncoder.from_preset("tiny", output_dim=64).eval()
    print("| lip features | held-out frame accuracy | commonest viseme |\n| --- | --- | --- |")
    rows = []
    for name, encoder in encoders.items():
        train = features(encoder, train_items, args.synth / "train.jsonl", alignments)
        test = features(encoder, test_items, test_manifest, alignments)
        commonest = max(set(train[1]), key=train[1].count)
        accuracy, recall = probe_accuracy(train, test)
        rows.append({"features": name, "accuracy": accuracy, "recall": recall,
                     "commonest": sum(label == commonest for label in test[1]) / len(test[1])})
        print(f"| {name} | {accuracy:.3f} | {rows[-1]['commonest']:.3f} |", flush=True)
        print("  recall: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(recall.items())), flush=True)
    record(args.output, args, {"train_clips": len(train_items), "test_clips": len(test_items), "rows": rows})


if __name__ == "__main__":
    main()
