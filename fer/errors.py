"""Exception types of the `fer` package: every bad input ends in one of these, with a message naming the cause."""

from __future__ import annotations


class FerError(Exception):
    """Base class of every error raised on purpose by `fer`."""


class RuntimeNotFoundError(FerError):
    """No TFLite interpreter package (ai-edge-litert, tflite-runtime or tensorflow) can be imported."""


class ModelNotFoundError(FerError, FileNotFoundError):
    """The model file (or its metadata sidecar) does not exist."""


class InvalidModelError(FerError, ValueError):
    """The file exists but is not a usable model: not TFLite, corrupt, or its shapes do not fit its metadata."""


class InvalidImageError(FerError, ValueError):
    """A frame or face array that cannot be analysed: None, empty, wrong dtype, wrong number of dimensions or channels."""
