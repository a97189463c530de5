"""int8 for the CPU engine, quality and speed: the exported score-network body quantised statically
(ONNX Runtime QDQ on the convolutions and matrix products after its pre-processing, per-channel
int8 weights, uint8 activations, min-max calibration) on the body's
inputs recorded while enhancing clips of the model's *training* speakers, then `enhance_real.py`'s
held-out benchmark run with engine `int8` beside the float32 ONNX Runtime engine, and the body's
time per call on the recorded inputs, both graphs side by side (OUTPUT/int8-speed/record.json).

    .venv/bin/python -m benchmarks.quality.int8_probe --calibration data/speech/librispeech/train.jsonl \\
        -- --model speech-prior --test data/speech/librispeech/test.jsonl data/speech/speechocean762/test.jsonl \\
        --per-speaker 1 --seconds 6 --snrs 0 --noises held-out real --limit 6 --backend onnxruntime \\
        --methods udiffse+ --variant "int8=udiffse+:backend=int8" --output runs/int8
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common.engines import ONNXRUNTIME, PipelinesByEngine
from benchmarks.common.record import record

INT8 = "int8"
QUANTISED_OPS = ["Conv", "MatMul", "Gemm"]  # the arithmetic; normalisations and activations stay float32


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", type=Path, nargs="+", required=True, help="manifests of training speakers")
    parser.add_argument("--calibration-clips", type=int, default=4)
    parser.add_argument("--feeds", type=int, default=48, help="recorded body inputs used to calibrate")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="-- then enhance_real.py's arguments")
    args = parser.parse_args(argv)
    return args, [a for a in args.rest if a != "--"]


def recorded_feeds(pipeline, clips, count: int) -> list[dict[str, np.ndarray]]:
    """The body's inputs of every call while `pipeline` enhances `clips` in pink noise at 0 dB, `count` kept evenly."""
    from avdiff.demo.mixing import mix_at_snr
    from benchmarks.common.noises import coloured

    session = pipeline.denoiser.network.session
    feeds, run = [], session.run

    def recording(outputs, inputs, *rest):
        feeds.append({name: value.copy() for name, value in inputs.items()})
        return run(outputs, inputs, *rest)

    session.run = recording
    rng = np.random.default_rng(7)
    for _, _, clean in clips:
        noisy, _ = mix_at_snr(clean, coloured(len(clean), rng, 1.0), 0.0)
        pipeline.enhance(noisy, sample_rate=16000)
    session.run = run
    keep = np.linspace(0, len(feeds) - 1, min(count, len(feeds))).round().astype(int)
    return [feeds[i] for i in keep]


def quantised(float_path: Path, feeds: list[dict[str, np.ndarray]], out: Path) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(feeds)

        def get_next(self):
            return next(self.items, None)

    from onnxruntime.quantization import quant_pre_process

    out = out.resolve()
    prepared = out.with_name(out.stem + "-prepared.onnx")
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):  # the tools leave files in the cwd
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)  # ONNX shapes, constants folded
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        op_types_to_quantize=QUANTISED_OPS)
    return out


def seconds_per_call(session, feeds: list[dict[str, np.ndarray]], rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        for feed in feeds:
            start = time.perf_counter()
            session.run(None, feed)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


class WithInt8(PipelinesByEngine):
    """The model's pipelines per engine, plus `int8`: the ONNX Runtime pipeline on the quantised body."""

    def __init__(self, model: str, int8_path: Path) -> None:
        super().__init__(model)
        self.int8_path = int8_path

    def get(self, engine: str):
        if engine == INT8 and INT8 not in self._loaded:
            from avdiff.inference.runtime import open_session
            from avdiff.pipeline.pipeline import AVDiffusionPipeline

            pipeline = AVDiffusionPipeline.from_pretrained(self.model, dtype=self.dtype_for(ONNXRUNTIME),
                                                           backend=ONNXRUNTIME)
            pipeline.denoiser.network.session = open_session(str(self.int8_path), torch.get_num_threads())
            self._loaded[INT8] = pipeline
        return super().get(engine)


def main(argv: list[str] | None = None) -> None:
    from avdiff.inference.onnx_export import exported_body
    from benchmarks.quality import enhance_real

    args, rest = parse_args(argv)
    bench = enhance_real.parse_args(rest)
    pipelines = PipelinesByEngine(bench.model)
    float_pipeline = pipelines.get(ONNXRUNTIME)
    clips = enhance_real.held_out_clips(args.calibration, 1, bench.seconds)[: args.calibration_clips]
    feeds = recorded_feeds(float_pipeline, clips, args.feeds)
    bench.output.mkdir(parents=True, exist_ok=True)
    float_path = exported_body(float_pipeline.denoiser.network.network)
    int8_path = quantised(float_path, feeds, bench.output / "score-body-int8.onnx")
    with_int8 = WithInt8(bench.model, int8_path)
    with_int8._loaded[ONNXRUNTIME] = float_pipeline
    speed = {"float32_s": seconds_per_call(float_pipeline.denoiser.network.session, feeds),
             "int8_s": seconds_per_call(with_int8.get(INT8).denoiser.network.session, feeds), "calls": len(feeds)}
    speed["ratio"] = speed["float32_s"] / speed["int8_s"]
    record(bench.output / "int8-speed", args, speed)  # enhance_real's record is bench.output's own
    print(f"body per call: float32 {speed['float32_s'] * 1e3:.1f} ms, int8 {speed['int8_s'] * 1e3:.1f} ms "
          f"({speed['ratio']:.2f}x), median over {len(feeds)} recorded calls x 3")
    enhance_real.main(rest, with_int8)


if __name__ == "__main__":
    main()
