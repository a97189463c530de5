"""Envelopes made from the phoneme at each frame: could lips that name the phonemes speak the
letters through per-phoneme envelope templates rather than through their regressed envelope?

The lips of `models/v2s-context` name the viseme of 94 % of the frames of new faces (viseme_probe),
and its score network reads GRID letters at 0.64 from the true envelope on held-out clips, yet at
0.28 from the lips' own envelope (BENCHMARKS.md, "Ninth session: the lips know the visemes"). A
template is the mean true envelope of one phoneme over training clips (`alignments.jsonl` labels,
`frame_phones`); `lips_matter.py --oracle-envelope W --phone-templates MANIFEST` adds diagnostic
systems: the templates of the true phonemes (what perfect naming would give) and, with
`--phone-head` (the trained head, which the exported model does not carry), the templates weighted
by its posterior on the lips' channels after the envelope's, alone, as the fast part under the
lips' slow part, and averaged with the lips' envelope. Measured flat on held-out letters.
"""

from __future__ import annotations

from pathlib import Path

import torch


def phone_templates(clips: list[tuple[torch.Tensor, list | None]]) -> torch.Tensor:
    """(classes, bands) mean true envelope of each phone class over training `clips`, each a (T, bands)
    envelope per video frame with its phoneme times; a class never seen gets the mean of all frames."""
    from avdiff.data.phone_labels import PHONE_CLASSES, frame_phones

    bands = clips[0][0].shape[1]
    sums, counts = torch.zeros(len(PHONE_CLASSES), bands), torch.zeros(len(PHONE_CLASSES))
    for envelope, phonemes in clips:
        envelope = envelope.float()
        labels = torch.from_numpy(frame_phones(phonemes, 0, len(envelope), len(envelope)))
        known = labels >= 0
        sums.index_add_(0, labels[known], envelope[known])
        counts.index_add_(0, labels[known], torch.ones(int(known.sum())))
    overall = torch.cat([envelope.float() for envelope, _ in clips]).mean(0)
    return torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], overall)


def true_phone_envelope(templates: torch.Tensor, phonemes: list | None, frames: int,
                        fallback: torch.Tensor) -> torch.Tensor:
    """(frames, bands) the templates of the phonemes sounding at each frame; `fallback`'s frame
    where the phoneme is unknown."""
    from avdiff.data.phone_labels import frame_phones

    labels = torch.from_numpy(frame_phones(phonemes, 0, frames, frames))
    out = fallback[:frames].clone().float()
    known = labels >= 0
    out[known] = templates[labels[known]]
    return out


def load_phone_head(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (classes, channels), bias) of a training checkpoint's phone head (`model.safetensors`
    or the EMA's `ema.safetensors`)."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    prefix = next(key[: -len("phone_head.weight")] for key in state if key.endswith("phone_head.weight"))
    return state[prefix + "phone_head.weight"].float(), state[prefix + "phone_head.bias"].float()


def posterior_envelope(templates: torch.Tensor, head: tuple[torch.Tensor, torch.Tensor],
                       embeddings: torch.Tensor, bands: int) -> torch.Tensor:
    """(T, bands) the templates weighted by the phone head's posterior on the lips' channels after
    the envelope's."""
    weight, bias = head
    logits = embeddings[:, bands:].float() @ weight.T + bias
    return torch.softmax(logits, dim=-1) @ templates


def template_envelopes(pipeline, video, item_phonemes: list | None, state: dict, w: float) -> dict[str, torch.Tensor]:
    """System name -> the (T, bands) envelope it puts in the lips' envelope channels, for one clip (see
    the module docstring); `state` holds the templates and the phone head."""
    from avdiff.audio.envelope import slow_part

    bands = pipeline.lip_encoder.config.envelope_bands
    with torch.no_grad():
        embeddings = pipeline.encode_lips(video).float()
    systems = {f"true phones' templates w={w:g}": true_phone_envelope(
        state["templates"], item_phonemes, len(embeddings), embeddings[:, :bands])}
    if state.get("head") is not None:
        templated = posterior_envelope(state["templates"], state["head"], embeddings, bands)
        lips = embeddings[:, :bands]
        systems[f"lips' phones' templates w={w:g}"] = templated
        systems[f"lips' slow part, templates' fast part w={w:g}"] = slow_part(lips) + templated - slow_part(templated)
        systems[f"mean of lips' envelope and templates w={w:g}"] = 0.5 * (lips + templated)
    return systems


__all__ = ["load_phone_head", "phone_templates", "posterior_envelope", "template_envelopes", "true_phone_envelope"]
