"""The score network's engine per benchmark system: `backend=NAME` in a system's spec
(`method:backend=onnxruntime,...`, `sampler:backend=...`) runs it on a pipeline with that engine
(`avdiff.inference`); systems without it run on the harness's `--backend` (torch unless told,
so earlier runs stay comparable). One pipeline per engine is loaded and kept."""

from __future__ import annotations

from typing import Any

ENGINE_KEY = "backend"
ONNXRUNTIME = "onnxruntime"  # runs float32 only (avdiff.inference): its pipelines load in float32 unless told


def pop_engine(changes: dict, default: str) -> tuple[str, dict]:
    """(engine, the other changes) of a system's parsed spec."""
    rest = dict(changes)
    return str(rest.pop(ENGINE_KEY, default)), rest


class PipelinesByEngine:
    """`AVDiffusionPipeline`s of one model in one dtype, one per engine, loaded on first use."""

    def __init__(self, model: str, dtype: Any = None) -> None:
        self.model, self.dtype, self._loaded = model, dtype, {}

    def dtype_for(self, engine: str) -> Any:
        """The dtype `engine`'s pipeline loads in: the harness's, or float32 for ONNX Runtime where none
        was given (the default dtype is bfloat16 on CPUs with native bf16, where that engine would
        silently fall back to torch)."""
        return "float32" if engine == ONNXRUNTIME and self.dtype is None else self.dtype

    def get(self, engine: str):
        if engine not in self._loaded:
            from avdiff.pipeline.pipeline import AVDiffusionPipeline

            self._loaded[engine] = AVDiffusionPipeline.from_pretrained(self.model, dtype=self.dtype_for(engine),
                                                                       backend=engine)
        return self._loaded[engine]
