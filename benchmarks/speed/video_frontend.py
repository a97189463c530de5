"""Throughput of the video front-end: landmarks + mouth cropping, and the lip encoder.

Measures, with the median over repeats:
- landmarks (one backend) + tracking + mouth crops, in frames per second, on real clips
  (default: the GRID clips in ../shared/data/grid, 360 x 288, 25 fps);
- the lip encoder (a preset, random weights) in video frames per second of forward pass,
  at a given batch size and clip length, with crops of 88 x 88.

    .venv/bin/python -m benchmarks.speed.video_frontend --repeats 3 [--landmarks dlib] [--device cpu] [--threads N]

OUTPUT/record.json holds the figures with the run's provenance.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from avdiff.landmarks import create_detector
from avdiff.media import read_video
from avdiff.media.files import VIDEO_SUFFIXES
from avdiff.models.lip_encoder import LipEncoder
from avdiff.mouth import extract_mouth_rois
from benchmarks.common.paths import SHARED_DATA, default_output
from benchmarks.common.record import record

DEFAULT_CLIPS = SHARED_DATA / "grid"


def bench_landmarks(clips: list[Path], backend: str, device: str, weights: str | None, repeats: int) -> dict:
    videos = [read_video(p).frames for p in clips]
    detector = create_detector(backend, device=device, weights=weights)
    extract_mouth_rois(videos[0][:8], detector)  # warm-up (lazy loading, JIT)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        frames = sum(extract_mouth_rois(v, detector).rois.shape[0] for v in videos)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        rates.append(frames / (time.perf_counter() - start))
    return {"backend": backend, "device": device, "frames_per_repeat": frames,
            "frame_size": list(videos[0].shape[1:3]), "fps_median": statistics.median(rates),
            "fps_all": rates}


@torch.no_grad()
def bench_encoder(preset: str, device: str, batch: int, frames: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = LipEncoder.from_preset(preset).to(device).eval()
    video = torch.randint(0, 256, (batch, frames, 88, 88), dtype=torch.uint8, device=device)
    model(video)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(video)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"preset": preset, "device": device, "batch": batch, "frames": frames,
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
            "seconds_median": median, "video_frames_per_s": batch * frames / median,
            "realtime_factor": median / (batch * frames / 25)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, help="folder of videos (default: GRID clips)")
    parser.add_argument("--landmarks", default="dlib", choices=["dlib", "face-alignment"])
    parser.add_argument("--landmark-weights", default=None, help="face-alignment weights folder")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--presets", nargs="+", default=["tiny", "base"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=50, help="video frames per clip (50 = 2 s)")
    parser.add_argument("--output", type=Path, default=default_output(__file__),
                        help="folder for record.json (default: %(default)s)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    clips = sorted(p for p in args.clips.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    results: dict = {"device": args.device}
    if clips:
        results["landmarks_and_crops"] = bench_landmarks(clips, args.landmarks, args.device, args.landmark_weights,
                                                         args.repeats)
        r = results["landmarks_and_crops"]
        print(f"landmarks ({r['backend']}, {r['device']}) + crops: {r['fps_median']:.1f} frames/s "
              f"(median of {args.repeats}, {r['frames_per_repeat']} frames of {r['frame_size']})")
    else:
        print(f"no clips in {args.clips}: landmark benchmark skipped")
    results["lip_encoder"] = [bench_encoder(p, args.device, args.batch, args.frames, args.repeats) for p in args.presets]
    for r in results["lip_encoder"]:
        print(f"lip encoder {r['preset']} ({r['params_M']:.2f} M params, {r['device']}), batch {r['batch']} x "
              f"{r['frames']} frames: {r['seconds_median'] * 1000:.0f} ms, {r['video_frames_per_s']:.0f} frames/s, "
              f"real-time factor {r['realtime_factor']:.3f}")
    record(args.output, args, results)


if __name__ == "__main__":
    main()
