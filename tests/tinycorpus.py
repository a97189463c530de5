"""A tiny prepared corpus for training tests: tones whose pitch follows the mouth brightness.

Each item's video is a sequence of uniform grey frames; the audio is a sine whose frequency
is 300 Hz + 1500 Hz * brightness of the current frame, so the mapping video -> audio is exact
and learnable, and any misalignment between them would be visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from avdiff.data.manifest import write_manifest

SAMPLES_PER_FRAME = 640


def tone_for_brightness(brightness: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """Audio (640 samples per frame) whose instantaneous pitch follows the per-frame brightness."""
    frequency = np.repeat(300.0 + 1500.0 * brightness, SAMPLES_PER_FRAME)
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    return (0.3 * np.sin(phase)).astype(np.float32)


def make_tiny_corpus(folder: Path, num_items: int = 8, num_frames: int = 12, size: int = 32, seed: int = 0,
                     manifest_name: str = "manifest.jsonl") -> Path:
    """Write `num_items` clips (wav + uint8 npy) and a manifest; returns the manifest path."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for index in range(num_items):
        levels = rng.uniform(0.1, 0.9, size=max(1, num_frames // 4)).repeat(4)[:num_frames]
        levels = np.pad(levels, (0, num_frames - len(levels)), mode="edge")
        video = np.broadcast_to((levels * 255).astype(np.uint8)[:, None, None], (num_frames, size, size)).copy()
        item_id = f"item{index:03d}"
        np.save(folder / f"{item_id}.npy", video)
        sf.write(folder / f"{item_id}.wav", tone_for_brightness(levels), 16000, subtype="FLOAT")
        items.append({"id": item_id, "audio": f"{item_id}.wav", "video": f"{item_id}.npy", "num_frames": num_frames,
                      "duration": num_frames / 25, "speaker": f"s{index % 2}", "face_ok": [True] * num_frames})
    path = folder / manifest_name
    write_manifest(path, items)
    return path


# The tone task (tests/test_pipeline.py, benchmarks/quality/tone_task.py): its training recipe,
# clips and measures, in one place so the benchmark cannot drift from the test. 130 steps at
# learning rate 3e-3 keep the margins of 200 at 2e-3 in two thirds of the time (BENCHMARKS.md).
TONE_STEPS = 130
TONE_TRAINING = [
    "spectrogram.n_fft=254", "data.crop_frames=32", "data.crop_size=32", "data.num_workers=0",
    "data.hflip_prob=0", "data.time_mask_prob=0", "training.batch_size=8", "training.validate_every=0",
    "training.log_every=50", "training.warmup_steps=20", "training.learning_rate=3e-3",
    "training.checkpoint_every=1000", "training.cond_span_drop_prob=0.1", "training.ema_decay=0.99",
    "score_model.unet.block_out_channels=[8,16,16]", "score_model.unet.attention_levels=[false,false,false]",
    "score_model.unet.norm_num_groups=4", "score_model.unet.attention_head_dim=8", "sampler.name=heun", "sampler.steps=12",
]


def brightness_video(levels: np.ndarray, size: int = 32) -> np.ndarray:
    return np.broadcast_to((levels * 255).astype(np.uint8)[:, None, None], (len(levels), size, size)).copy()


def dominant_frequency(segment: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n=8192))
    return float(np.argmax(spectrum) * rate / 8192)


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    scale = (estimate @ reference) / (reference @ reference)
    target = scale * reference
    return float(10 * np.log10((target @ target) / ((estimate - target) @ (estimate - target))))


def tone_example(seed: int = 7, num_levels: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brightness levels (each held 5 frames, 0.2 s), the clean tone and it in white noise at 5 dB SNR."""
    rng = np.random.default_rng(seed)
    levels = np.repeat(rng.uniform(0.1, 0.9, num_levels), 5)
    clean = tone_for_brightness(levels)
    noise = rng.standard_normal(len(clean)).astype(np.float32)
    noise *= np.sqrt((clean**2).mean() / (noise**2).mean() / 10 ** (5 / 10))  # white noise at 5 dB SNR
    return levels, clean, clean + noise
