"""Enhancement of a multi-channel file, each channel on its own, keeping the file's channels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avdiff.media.audio import decode_audio_channels
from avdiff.pipeline.inputs import channel_count
from avdiff.pipeline.pipeline import AVDiffusionPipeline, EnhancementOutput
from avdiff.pipeline.plans import EnhancementPlan


def enhance_channels(pipeline: AVDiffusionPipeline, noisy: str | Path, plan: EnhancementPlan | None = None,
                     **options: Any) -> EnhancementOutput:
    """Enhance every channel of `noisy` on its own (a mono file as `enhance` does; identical channels once).

    The output's audio is (N,) for a mono file and (N, channels) otherwise, at the input's rate
    and length. `plan` and `options` are `pipeline.enhance`'s (without a plan, the overrides
    among `options` resolve into one, once for all channels)."""
    noisy = Path(noisy)
    calling = {k: options.pop(k) for k in _CALL_OPTIONS if k in options}
    if plan is None:
        plan = pipeline.enhancement_plan(**options)
    elif options:
        raise TypeError(f"give a plan or overrides, not both (got a plan and {', '.join(sorted(options))})")
    if channel_count(noisy) == 1:
        return pipeline.enhance(noisy, plan=plan, **calling)
    decoded = decode_audio_channels(noisy)
    channels = decoded.samples
    distinct = channels[:1] if (channels == channels[:1]).all() else channels
    notes = [f"{noisy.name}: {len(channels)} identical channels, enhanced once" if len(distinct) == 1
             else f"{noisy.name}: {len(channels)} channels, each enhanced on its own"]
    outputs, calls, reports = [], 0, []
    for channel in distinct:
        result = pipeline.enhance(channel, sample_rate=decoded.sample_rate, plan=plan, **calling)
        outputs.append(result.audio)
        calls += result.network_calls
        notes += [note for note in result.notes if note not in notes]
        reports.append(result.input_report)
    audio = np.stack(outputs if len(distinct) > 1 else outputs * len(channels), axis=1)
    report = {name: round(float(np.mean([r[name] for r in reports])), 3) for name in reports[0]}
    return EnhancementOutput(audio, decoded.sample_rate, calls, plan, notes, input_report=report)


# `enhance`'s arguments that are not plan overrides.
_CALL_OPTIONS = ("video", "seed", "show_progress", "landmarks", "landmark_weights", "lip_agreement")

