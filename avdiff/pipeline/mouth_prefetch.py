"""The mouth crops of a one-video job, made in a second process while the job starts.

A job's start (importing torch, opening the model: about 4 s on a 2-core CPU) and its video's
front-end (dlib's model, decoding, landmarks: about 3.5 s for 6 s of video) do not depend on each
other and each keeps one core busy. So `avdiff generate`, `enhance` and `extract` given one video
file with `--video` start its front-end in a spawned process before anything heavy is imported
(`prefetch_video`, from `avdiff.cli` through `avdiff.commands.common.start_mouth_prefetch`) and
take the crops when the model is ready. The crops are those the job would have made itself (the
same function, `mouth_rois_from_file`), and errors reach the job as they would have: a landmark
backend that cannot run is the job's error (`check_backend`), a video that cannot be read or shows
no face the item's (`take`). If the process dies, the job makes the crops itself. Only dlib on the
CPU is prefetched (face-alignment would load torch and its network a second time).

What crosses back is plain arrays (the crops, which faces were usable, which were detected), not
the front-end's result object: unpickling that imported its module's scipy into the job (0.27 s
on the critical path of a 6 s clip). Once the crops are in, the process is stopped without waiting
for its interpreter to tear down (another 0.25 s).
"""

from __future__ import annotations

import importlib
import multiprocessing
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from avdiff.errors import AVDiffError, InputError

_PREFETCHED_BACKEND = "dlib"
_NOT_VIDEO_FILES = (".npy", ".jsonl")  # mouth crops and manifests: nothing to prefetch
_READY, _BACKEND_FAILED, _DONE, _FAILED = "ready", "backend failed", "done", "failed"


def _described(error: BaseException) -> tuple[str, str, str]:
    """An error as (module, class name, message): what crosses back to the job (`_rebuilt`)."""
    return type(error).__module__, type(error).__qualname__, str(error)


def _rebuilt(described: tuple[str, str, str]) -> BaseException:
    """The job's copy of a prefetch error: the same avdiff error class with the same message, or an
    InputError naming the class of any other."""
    module, name, message = described
    try:
        kind = getattr(importlib.import_module(module), name)
        if isinstance(kind, type) and issubclass(kind, AVDiffError):
            return kind(message)
    except Exception:  # noqa: BLE001 - not rebuildable: said as an InputError
        pass
    return InputError(f"{name}: {message}")


def _work(connection: Connection, path: str, landmarks: str, weights: str | None) -> None:
    """The spawned process: load the backend (say whether it runs), then make the crops."""
    from avdiff.landmarks import check_backend
    from avdiff.mouth.from_file import mouth_rois_from_file

    try:
        check_backend(landmarks, device="cpu", weights=weights)
    except BaseException as error:  # noqa: BLE001 - reported to the job, which raises it
        connection.send((_BACKEND_FAILED, _described(error)))
        return
    connection.send((_READY, None))
    try:
        rois = mouth_rois_from_file(path, landmarks, weights, "cpu")
        connection.send((_DONE, (rois.rois, rois.face_ok, rois.landmarks.found)))
    except BaseException as error:  # noqa: BLE001
        connection.send((_FAILED, _described(error)))


class MouthPrefetch:
    """The front-end of one video file running in a spawned process."""

    def __init__(self, path: Path, landmarks: str, weights: str | None) -> None:
        self.path = path.resolve()
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: safe whatever is loaded here
        self._connection, child = context.Pipe(duplex=False)
        self._process = context.Process(target=_work, args=(child, str(path), landmarks, weights), daemon=True,
                                        name="avdiff-mouth-prefetch")
        self._process.start()
        child.close()
        self._ready: bool | None = None  # None: not heard yet; False: the process is gone

    def _receive(self) -> tuple[str, Any] | None:
        try:
            return self._connection.recv()
        except (EOFError, OSError):  # the process died: the job does the work itself
            return None

    def check_backend(self) -> bool:
        """Wait until the process has loaded the landmark backend: True if it runs, False if the
        process is gone (check it in this one); its error if it cannot run."""
        if self._ready is None:
            message = self._receive()
            if message is not None and message[0] == _BACKEND_FAILED:
                self._ready = False
                raise _rebuilt(message[1])
            self._ready = message is not None and message[0] == _READY
        return self._ready

    def take(self, path: str | Path, crop_size: int, mouth_model: Any = None) -> Any:
        """The MouthVideo of `path` if it is the prefetched file, else None (also when the process
        died: the caller makes it); the item's error if its video could not be read (`mouth_model`:
        the model's `MouthModel` for the reliability)."""
        from avdiff.pipeline.inputs import mouth_video_from_array

        if Path(path).resolve() != self.path or not self.check_backend():
            return None
        message = self._receive()
        self._ready = False  # taken once
        if self._process.is_alive():  # done with it: no need to wait for its interpreter's tear-down
            self._process.terminate()
        if message is None:
            return None
        if message[0] == _FAILED:
            raise _rebuilt(message[1])
        rois, face_ok, found = message[1]
        return mouth_video_from_array(rois, crop_size, face_ok, name=str(path), found=found, mouth_model=mouth_model)

    def close(self) -> None:
        """Stop the process if it still runs (the job ended early) and release the pipe."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)
        self._connection.close()


def prefetch_video(video: Path | None, landmarks: str, weights: str | None) -> MouthPrefetch | None:
    """The prefetch of `video` when it is one video file (not mouth crops or a manifest) and the
    `landmarks` backend (`auto` resolved as the job will) is dlib; else None."""
    if video is None or not video.is_file() or video.suffix.lower() in _NOT_VIDEO_FILES:
        return None
    from avdiff.landmarks import choose_backend

    try:
        choice = choose_backend(landmarks, weights)
    except Exception:  # noqa: BLE001 - no backend can run: the job says so itself
        return None
    if choice.name != _PREFETCHED_BACKEND:
        return None
    return MouthPrefetch(video, choice.name, choice.weights)
