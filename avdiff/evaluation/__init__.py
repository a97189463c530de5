"""Objective evaluation of generated and enhanced speech (`avdiff evaluate`).

Metrics on 16 kHz mono signals (SI-SDR, PESQ wide/narrow-band, STOI, ESTOI, log-spectral
distance, optional WER), folder matching, mean and 95 % CI summaries, and the noisereduce baseline.
"""

from avdiff.evaluation.baselines import noisereduce_file, noisereduce_folder
from avdiff.evaluation.folders import evaluate_folders, evaluate_transcripts
from avdiff.evaluation.matching import Matching, match_folders
from avdiff.evaluation.metrics import (
    METRICS, SIGNAL_METRICS, PairScores, compute_metrics, estoi, log_spectral_distance, pesq_nb, pesq_wb, si_sdr,
    stoi,
)
from avdiff.evaluation.report import EvaluationResult, markdown_table
from avdiff.evaluation.signals import (
    LengthMismatchError, MetricError, MissingDependencyError, align_lengths, prepare_pair,
)
from avdiff.evaluation.statistics import mean_ci95, summarize
from avdiff.evaluation.wer import load_transcriber, word_error_rate

__all__ = [
    "METRICS", "SIGNAL_METRICS", "EvaluationResult", "LengthMismatchError", "Matching", "MetricError",
    "MissingDependencyError", "PairScores", "align_lengths", "compute_metrics", "estoi", "evaluate_folders",
    "evaluate_transcripts", "load_transcriber", "log_spectral_distance", "markdown_table", "match_folders", "mean_ci95",
    "noisereduce_file", "noisereduce_folder", "pesq_nb", "pesq_wb", "prepare_pair", "si_sdr", "stoi",
    "summarize", "word_error_rate",
]
