"""`EmotionClassifier`: a TFLite FER model plus its metadata sidecar, behind one stable call.

    clf = EmotionClassifier.load()            # fer/models/fer_edge_int8.tflite + .json
    probs = clf.predict(faces)                # uint8 (N, H, W) -> float32 (N, 7), rows sum to 1, LABELS order

Everything model-specific (input size, normalisation, quantisation, label order) is read from the model and its
sidecar; a model that does not fit is refused at load time with InvalidModelError, never deep inside `invoke()`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer.errors import InvalidImageError, InvalidModelError, ModelNotFoundError
from fer.labels import LABELS
from fer.metadata import ModelMetadata, parse_metadata, read_metadata, sidecar_path
from fer.preprocess import resize_face
from fer.runtime import Runtime, default_runtime

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL_PATH = MODELS_DIR / "fer_edge_int8.tflite"
EXPORT_COMMAND = "python -m training.export"
TFLITE_MAGIC = b"TFL3"  # FlatBuffer file identifier, bytes 4..8 of every .tflite
SUPPORTED_TENSOR_TYPES = (np.float32, np.int8, np.uint8)


class EmotionClassifier:
    """A loaded FER model. Thread-safe: one interpreter, calls serialised by a lock.

    `max_batch`: faces per invoke. 1 (default) runs face by face on the model's own batch-1 tensor; larger values
    resize the input tensor to the batch. Measured with `make bench` (LiteRT + XNNPACK, 1 thread, 2-core x86):
    batches of 16 were never clearly faster per face (seed EDNN 0.25-0.61 ms vs 0.36-0.40 one by one) and were
    slower for mini-Xception (0.64-1.12 ms vs 0.49-0.52), and a single 3,589-face batch was 5x slower still.
    """

    DEFAULT_MAX_BATCH = 1

    def __init__(self, interpreter: Any, metadata: ModelMetadata, model_path: Path, runtime: Runtime,
                 num_threads: int) -> None:
        self._interpreter = interpreter
        self.metadata = metadata
        self.model_path = model_path
        self.runtime_name = runtime.name
        self.num_threads = num_threads
        self._lock = threading.Lock()
        self._input = interpreter.get_input_details()[0]
        self._output = interpreter.get_output_details()[0]
        self._input_shape = tuple(int(v) for v in self._input["shape"])
        # Columns of the model's output in LABELS order (a sidecar may list its labels in another order).
        self._label_order = np.array([metadata.labels.index(label) for label in LABELS])
        self._batch_size = self._input_shape[0]
        self._batching = _can_resize_batch(interpreter, self._input)
        self.max_batch = self.DEFAULT_MAX_BATCH
        # Every input value is a function of one pixel (normalise, then quantise), so a 256-entry table gives the whole
        # input tensor in one lookup: the same values as the arithmetic, in a third of its time.
        self._pixel_to_input = _quantize(np.arange(256, dtype=np.float32) * np.float32(metadata.scale)
                                         + np.float32(metadata.offset), self._input)
        # Likewise every output score is a function of one 8-bit value (None for float outputs).
        self._output_to_score = _dequantization_table(self._output)
        # An 8-bit output whose every code lies in [0, 1] is a quantised softmax: its rows only need renormalising.
        self._outputs_probabilities = self._output_to_score is not None and bool(
            self._output_to_score.min() >= 0 and self._output_to_score.max() <= 1 + 1e-3)

    # ---- loading ----------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path | None = None, num_threads: int = 1, *,
             metadata: ModelMetadata | dict | str | Path | None = None) -> EmotionClassifier:
        """Load `path` (default: the shipped model) and its sidecar `<stem>.json`.

        `metadata` overrides the sidecar (a ModelMetadata, its JSON dict, or another sidecar path): used to run
        models from read-only places such as ../shared/anchors.
        """
        model_path = Path(path) if path is not None else DEFAULT_MODEL_PATH
        if not model_path.is_file():
            hint = f"; create it with `{EXPORT_COMMAND}`" if path is None else ""
            raise ModelNotFoundError(f"{model_path}: model file not found{hint}")
        if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1:
            raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
        _check_tflite_header(model_path)
        meta = _resolve_metadata(model_path, metadata)
        runtime = default_runtime()
        try:
            interpreter = runtime.make_interpreter(str(model_path), num_threads)
            interpreter.allocate_tensors()
        except Exception as error:  # each runtime raises its own types (ValueError, RuntimeError) for bad models
            raise InvalidModelError(f"{model_path}: {runtime.name} cannot load this model ({error})") from error
        _check_signature(interpreter, meta, model_path)
        return cls(interpreter, meta, model_path, runtime, num_threads)

    # ---- properties -------------------------------------------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        return self.metadata.input_size

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def size_bytes(self) -> int:
        return self.model_path.stat().st_size

    def __repr__(self) -> str:
        return (f"EmotionClassifier({self.name!r}, {self.model_path.name}, input {self.input_size} "
                f"{self.input_dtype}, runtime {self.runtime_name}, threads {self.num_threads})")

    # ---- inference --------------------------------------------------------------------------------------------
    def predict(self, faces: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Probabilities for grayscale uint8 faces (N, H, W) of any size: float32 (N, 7) in LABELS order."""
        batch = self.prepare(faces)
        if batch.shape[0] == 0:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        with self._lock:
            raw = self._run(batch)
        return _to_probabilities(raw[:, self._label_order], known_probabilities=self._outputs_probabilities)

    def predict_one(self, face: np.ndarray) -> np.ndarray:
        """Probabilities (7,) for a single grayscale face (H, W)."""
        if isinstance(face, np.ndarray) and face.ndim == 2:
            return self.predict(face[None])[0]
        raise InvalidImageError(f"predict_one expects one grayscale face (H, W), got {_describe(face)}")

    def prepare(self, faces: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Resize and normalise faces into the model's input tensor (N, H, W, 1) of its input dtype."""
        images = _check_faces(faces)
        height, width = self.input_size
        resized = np.stack([self._resize(face, (height, width)) for face in images]) if len(images) else \
            np.zeros((0, height, width), dtype=np.uint8)
        return self._pixel_to_input[resized].reshape(len(resized), *self._input_shape[1:])

    def _resize(self, face: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        resized = np.ascontiguousarray(resize_face(face, size))
        # The training pipeline equalised the faces when its recipe said so; the sidecar carries it.
        return cv2.equalizeHist(resized) if self.metadata.equalize_histogram else resized

    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Invoke in chunks of `max_batch` faces (one resized invoke each), or face by face."""
        step = self.max_batch if self._batching else 1
        if batch.shape[0] == 1:  # the common case, one face per frame: nothing to split or join
            self._resize_batch(1)
            return self._invoke(batch)
        if step <= 1:
            self._resize_batch(1)
            return np.concatenate([self._invoke(batch[i:i + 1]) for i in range(batch.shape[0])])
        outputs = []
        for start in range(0, batch.shape[0], step):
            chunk = batch[start:start + step]
            self._resize_batch(chunk.shape[0])
            outputs.append(self._invoke(chunk))
        return np.concatenate(outputs)

    def _resize_batch(self, count: int) -> None:
        if self._batch_size == count:
            return
        self._interpreter.resize_tensor_input(self._input["index"], [count, *self._input_shape[1:]])
        self._interpreter.allocate_tensors()
        self._batch_size = count

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input["index"], batch)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._output["index"]).reshape(batch.shape[0], -1)
        if self._output_to_score is None:
            return raw.astype(np.float32)
        return self._output_to_score[raw.view(np.uint8)]


# ---- helpers (module level so tests can read them as a specification) ---------------------------------------------
def _check_tflite_header(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise InvalidModelError(f"{path}: cannot read model file ({error})") from error
    if len(head) < 8 or head[4:8] != TFLITE_MAGIC:
        raise InvalidModelError(f"{path}: not a TFLite model (missing the '{TFLITE_MAGIC.decode()}' identifier); "
                                f"empty, truncated or another format?")


def _resolve_metadata(model_path: Path, metadata: ModelMetadata | dict | str | Path | None) -> ModelMetadata:
    if isinstance(metadata, ModelMetadata):
        return metadata
    if isinstance(metadata, dict):
        return parse_metadata(metadata, source=f"metadata for {model_path.name}")
    return read_metadata(Path(metadata) if metadata is not None else sidecar_path(model_path))


def _check_signature(interpreter: Any, meta: ModelMetadata, path: Path) -> None:
    """Refuse models whose tensors do not fit the sidecar: one image input (1|N, H, W[, 1]) and one 7-class output."""
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise InvalidModelError(f"{path}: expected 1 input and 1 output tensor, model has {len(inputs)} and {len(outputs)}")
    shape = tuple(int(v) for v in inputs[0]["shape"])
    if not (len(shape) == 4 and shape[3] == 1 or len(shape) == 3):
        raise InvalidModelError(f"{path}: input shape {shape} is not a grayscale image batch (N, H, W, 1) or (N, H, W)")
    signature = inputs[0].get("shape_signature")
    if shape[0] != 1 and (signature is None or int(signature[0]) != -1):
        raise InvalidModelError(f"{path}: input has a fixed batch of {shape[0]}; export it with batch 1 or a dynamic batch")
    if tuple(shape[1:3]) != tuple(meta.input_size):
        raise InvalidModelError(f"{path}: model input is {shape[1]}x{shape[2]} but its metadata says "
                                f"{meta.input_size[0]}x{meta.input_size[1]}")
    if np.dtype(inputs[0]["dtype"]) not in [np.dtype(t) for t in SUPPORTED_TENSOR_TYPES]:
        raise InvalidModelError(f"{path}: unsupported input type {np.dtype(inputs[0]['dtype'])} (float32, int8, uint8 work)")
    if np.dtype(outputs[0]["dtype"]) not in [np.dtype(t) for t in SUPPORTED_TENSOR_TYPES]:
        raise InvalidModelError(f"{path}: unsupported output type {np.dtype(outputs[0]['dtype'])} (float32, int8, uint8 work)")
    out_shape = tuple(int(v) for v in outputs[0]["shape"])
    if out_shape[-1] != len(LABELS) or int(np.prod(out_shape[1:])) != len(LABELS):
        raise InvalidModelError(f"{path}: output shape {out_shape} does not give {len(LABELS)} class scores per face")


def _can_resize_batch(interpreter: Any, input_detail: dict) -> bool:
    """Whether the batch dimension can be resized (it can unless the model pinned it in its shape signature)."""
    signature = input_detail.get("shape_signature")
    if signature is not None and len(signature) and int(signature[0]) not in (-1, 1):
        return False
    return hasattr(interpreter, "resize_tensor_input")


def _check_faces(faces: Any) -> list[np.ndarray]:
    if faces is None:
        raise InvalidImageError("faces is None")
    if isinstance(faces, np.ndarray):
        if faces.ndim == 4 and faces.shape[3] == 1:
            faces = faces[..., 0]
        if faces.ndim != 3:
            hint = " (one face? pass face[None])" if faces.ndim == 2 else ""
            raise InvalidImageError(f"faces must be uint8 (N, H, W) grayscale, got shape {faces.shape}{hint}")
        items: list[Any] = list(faces)
        if faces.dtype != np.uint8:
            raise InvalidImageError(f"faces must be uint8 (0..255), got dtype {faces.dtype}")
    elif isinstance(faces, (list, tuple)):
        items = list(faces)
    else:
        raise InvalidImageError(f"faces must be a uint8 array (N, H, W) or a list of (H, W) arrays, got {_describe(faces)}")
    for index, face in enumerate(items):
        if not isinstance(face, np.ndarray) or face.dtype != np.uint8 or face.ndim != 2:
            raise InvalidImageError(f"face {index} must be a uint8 (H, W) grayscale array, got {_describe(face)}")
        if face.size == 0:
            raise InvalidImageError(f"face {index} is empty (shape {face.shape})")
    return items


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array {value.shape} {value.dtype}"
    return type(value).__name__


def _quantize(values: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    if not scale:
        raise InvalidModelError(f"integer input tensor without quantisation parameters ({dtype})")
    info = np.iinfo(dtype)
    return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(raw: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(detail["dtype"]) == np.float32:
        return raw.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return ((raw.astype(np.float32) - zero_point) * (scale or 1.0)).astype(np.float32)


def _dequantization_table(detail: dict) -> np.ndarray | None:
    """The dequantised value of each of an 8-bit tensor's 256 codes, indexed by the code's bits read as uint8."""
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return None
    return _dequantize(np.arange(256, dtype=np.uint8).view(dtype), detail)


def _to_probabilities(scores: np.ndarray, known_probabilities: bool = False) -> np.ndarray:
    """Rows that sum to 1: softmax for logits, renormalisation for (de)quantised probabilities.

    `known_probabilities`: the model's output cannot hold anything else (a quantised softmax), so the checks are skipped;
    this runs once per face, and each small array operation costs several microseconds."""
    scores = scores.astype(np.float32)
    if known_probabilities:
        totals = scores.sum(axis=1, keepdims=True)
        if totals.all():
            return scores / totals
    if scores.min() < -1e-3 or scores.max() > 1 + 1e-3:  # not probabilities: a model without its final softmax
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    scores = np.maximum(scores, 0.0)
    totals = scores.sum(axis=1, keepdims=True)
    if totals.all():  # the usual case, without the fallback's extra arrays (this runs once per face)
        return scores / totals
    uniform = np.full_like(scores, 1.0 / scores.shape[1])
    # int8 outputs can round every class to 0; a uniform row says "no information" instead of dividing by zero.
    return np.where(totals > 0, scores / np.where(totals > 0, totals, 1), uniform).astype(np.float32)
