"""Which TFLite interpreter to use: ai-edge-litert first, then tflite-runtime, then TensorFlow's bundled one.

`tflite-runtime` 2.14 crashes with NumPy 2, and TensorFlow is far too heavy for a Raspberry Pi, so LiteRT is preferred;
the others keep older set-ups (a Pi image with tflite-runtime, a training machine with only TensorFlow) working.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fer.errors import RuntimeNotFoundError

# (name reported to users, module to import, attribute path of the Interpreter class inside it), in order of preference.
RUNTIME_CANDIDATES: tuple[tuple[str, str, str], ...] = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", "Interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter", "Interpreter"),
    ("tensorflow.lite", "tensorflow", "lite.Interpreter"),
)


@dataclass(frozen=True)
class Runtime:
    name: str  # one of the RUNTIME_CANDIDATES names
    interpreter_class: Any

    def make_interpreter(self, model_path: str, num_threads: int) -> Any:
        return self.interpreter_class(model_path=model_path, num_threads=num_threads)


def find_runtime() -> Runtime:
    """Import the first available interpreter; raise RuntimeNotFoundError listing what was tried."""
    failures: list[str] = []
    for name, module_name, attribute_path in RUNTIME_CANDIDATES:
        try:
            target: Any = importlib.import_module(module_name)
            for attribute in attribute_path.split("."):
                target = getattr(target, attribute)
        except (ImportError, AttributeError) as error:
            failures.append(f"{name}: {error}")
            continue
        return Runtime(name, target)
    raise RuntimeNotFoundError(
        "no TFLite interpreter available; install one with `pip install ai-edge-litert` (tried: " + "; ".join(failures) + ")"
    )


@lru_cache(maxsize=1)
def default_runtime() -> Runtime:
    """The runtime chosen once per process (cached: imports are slow, TensorFlow's especially)."""
    return find_runtime()
