"""The demo's report: metrics tables, spectrogram pictures and links to the audio, as Markdown and HTML."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import soundfile as sf

from avdiff.demo.inference import PLANS_NAME, DemoModel, TestSet, recorded_plans
from avdiff.demo.settings import DemoSettings
from avdiff.timegrid import SAMPLE_RATE

CAVEAT = ("Synthetic speech and tiny data: these figures show the machinery works end to end, not how a model "
          "does on real speech.")


def spectrogram_png(signals: dict[str, np.ndarray], path: Path, sample_rate: int = SAMPLE_RATE, title: str = "") -> Path:
    """One row per signal: log-magnitude spectrograms on a shared colour scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(signals), 1, figsize=(8, 1.6 * len(signals)), sharex=True, squeeze=False)
    for ax, (name, audio) in zip(axes[:, 0], signals.items()):
        window = np.hanning(512)
        frames = [audio[i : i + 512] * window for i in range(0, max(1, len(audio) - 512), 128)]
        power = np.abs(np.fft.rfft(np.stack(frames), axis=1)) ** 2
        db = 10 * np.log10(power.T + 1e-10)
        ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=db.max() - 80, vmax=db.max(),
                  extent=(0, len(audio) / sample_rate, 0, sample_rate / 2000))
        ax.set_ylabel(f"{name}\nkHz", fontsize=8)
    axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(folder: Path, title: str, sections: list[tuple[str, str]], pictures: list[tuple[str, Path]],
                 audio_links: list[tuple[str, list[tuple[str, Path]]]]) -> tuple[Path, Path]:
    """report.md and report.html in `folder`: markdown sections, pictures, audio links (relative paths)."""
    lines = [f"# {title}", ""]
    for heading, body in sections:
        lines += [f"## {heading}", "", body, ""]
    for caption, picture in pictures:
        lines += [f"![{caption}]({picture.relative_to(folder)})", "", f"*{caption}*", ""]
    if audio_links:
        lines += ["## Listen", ""]
        for item, links in audio_links:
            lines.append(f"- {item}: " + ", ".join(f"[{name}]({path.relative_to(folder)})" for name, path in links))
        lines.append("")
    markdown = folder / "report.md"
    markdown.write_text("\n".join(lines))

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}pre{white-space:pre-wrap}</style>",
             f"</head><body><h1>{html.escape(title)}</h1>"]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{_markdown_block_to_html(body)}")
    for caption, picture in pictures:
        parts.append(f"<figure><img src='{picture.relative_to(folder)}' width='900'>"
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if audio_links:
        parts.append("<h2>Listen</h2><table>")
        for item, links in audio_links:
            cells = "".join(f"<td>{html.escape(name)}<br><audio controls preload='none' src='{path.relative_to(folder)}'>"
                            f"</audio></td>" for name, path in links)
            parts.append(f"<tr><th>{html.escape(item)}</th>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    page = folder / "report.html"
    page.write_text("\n".join(parts))
    return markdown, page


def _markdown_block_to_html(body: str) -> str:
    """Markdown tables become HTML tables; other lines become paragraphs."""
    out, table = [], []

    def flush() -> None:
        if table:
            rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in table]
            header, rest = rows[0], [r for r in rows[1:] if not all(set(c) <= set("-: ") for c in r)]
            out.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in header) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rest)
                       + "</table>")
            table.clear()

    for line in body.splitlines():
        if line.strip().startswith("|"):
            table.append(line)
            continue
        flush()
        if line.strip():
            out.append(f"<p>{html.escape(line)}</p>")
    flush()
    return "\n".join(out)


def model_sections(settings: DemoSettings, model: DemoModel, tables: dict) -> list[tuple[str, str]]:
    """A model's video-to-speech table and one enhancement table per SNR, headed by the model's label."""
    from avdiff.evaluation import markdown_table

    title = model.label[0].upper() + model.label[1:]
    sections = [(f"{title}: video-to-speech (held-out silent clips)", markdown_table(tables["generation"])
                 + f"\n\nModel: {model.path}. 'lips' uses classifier-free guidance w = {settings.guidance:g}; "
                 "'unconditional' is the same model with every face masked: the lips must beat it."
                 + (" 'clean speech' is the recogniser on the reference itself: the best WER to hope for."
                    if "clean speech" in tables["generation"] else ""))]
    for snr, systems in tables["enhancement"].items():
        sections.append((f"{title}: enhancement at {snr} SNR ({settings.method})", markdown_table(systems)))
    plans = recorded_plans(model)
    if plans:
        lines = [f"- {name}: {plan['summary']}" for name, plan in plans.items()]
        sections.append((f"{title}: what ran", "\n".join(lines) + f"\n\nEvery setting of each run: "
                         f"{model.root / PLANS_NAME}."))
    return sections


AudioLinks = list[tuple[str, list[tuple[str, Path]]]]  # (row label, [(link label, wav)]) as write_report takes them


def listening(test: TestSet, models: list[DemoModel]) -> tuple[dict[str, Path], AudioLinks]:
    """The first test clip's signals (spectrogram rows) and its audio links: the inputs, then each model's outputs."""
    name = f"{test.items[0]['id']}.wav"
    snr, root = next(iter(test.mixtures.items()))
    inputs = [("clean", test.reference / name), (f"noisy ({snr})", root / "noisy" / name)]
    links = [(f"{name}: inputs", inputs)]
    for model in models:
        links.append((f"{name}: {model.label}", [
            (f"{model.short} enhanced audio-only", model.enhanced(snr, "audio-only") / name),
            (f"{model.short} enhanced audio-visual", model.enhanced(snr, "audio-visual") / name),
            (f"{model.short} from lips", model.generated("lips") / name),
            (f"{model.short} unconditional", model.generated("unconditional") / name)]))
    return {label: path for _, row in links for label, path in row}, links


def write_demo_report(settings: DemoSettings, test: TestSet, runs: list[tuple[DemoModel, dict]],
                      notes: tuple[list[tuple[str, str]], list[tuple[str, str]]], run_lines: list[str]) -> Path:
    """report.md and report.html: notes (heading, text) before and after each model's sections, then
    the run, spectrograms and audio of the first test clip."""
    out = settings.output
    before, after = notes
    sections = [*before, *(section for model, tables in runs for section in model_sections(settings, model, tables)),
                *after]
    sections.append(("Run", "\n".join([*run_lines, CAVEAT])))
    pictures = []
    signals, links = listening(test, [model for model, _ in runs])
    if runs:
        picture = spectrogram_png({k: sf.read(v, dtype="float32")[0] for k, v in signals.items()},
                                  out / "figures" / "spectrograms.png",
                                  title=f"{test.items[0]['id']} (the noisy row: {next(iter(test.mixtures))} SNR)")
        pictures.append(("Spectrograms", picture))
    markdown, _ = write_report(out, "avdiff demo report", sections, pictures, links if runs else [])
    return markdown
