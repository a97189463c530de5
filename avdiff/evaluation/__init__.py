"""Objective evaluation of generated and enhanced speech (`avdiff evaluate`).

Metrics on 16 kHz mono signals (SI-SDR, PESQ wide/narrow-band, STOI, ESTOI, log-spectral
distance, optional WER, harmonicity of voiced frames), folder matching, mean and 95 % CI summaries, and the noisereduce baseline.
The names below load on first use (PEP 562), so `avdiff --help` does not import SciPy's signal
library for `avdiff evaluate`'s flags.
"""

from __future__ import annotations

from avdiff.lazy import lazy_exports

_MODULES = {
    "avdiff.evaluation.baselines": ("noisereduce_file", "noisereduce_folder"),
    "avdiff.evaluation.folders": ("evaluate_folders", "evaluate_transcripts"),
    "avdiff.evaluation.harmonicity": ("harmonicity", "periodicity"),
    "avdiff.evaluation.matching": ("Matching", "match_folders"),
    "avdiff.evaluation.metrics": ("METRICS", "SIGNAL_METRICS", "PairScores", "compute_metrics", "estoi",
                                  "log_spectral_distance", "pesq_nb", "pesq_wb", "si_sdr", "stoi"),
    "avdiff.evaluation.report": ("EvaluationResult", "markdown_table"),
    "avdiff.evaluation.signals": ("LengthMismatchError", "MetricError", "MissingDependencyError", "align_lengths",
                                  "prepare_pair"),
    "avdiff.evaluation.statistics": ("mean_ci95", "summarize"),
    "avdiff.evaluation.wer": ("load_transcriber", "word_error_rate"),
}
_EXPORTS = {name: module for module, names in _MODULES.items() for name in names}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
