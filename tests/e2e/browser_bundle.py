"""The built browser-analysis bundle (frontend/build) served on loopback for tests and the benchmark, outside Streamlit.

`BundleServer` is a plain static HTTP server over the build folder (the files the app serves as a Streamlit component);
`open_bundle_page` loads it in Chromium and `load_analyzer` builds the in-page `Analyzer` (LiteRT.js + the configured
model and BlazeFace, described by `app.browser_analysis.model_assets`). `bundle_skip_reason` says why browser-mode tests
cannot run here (no Chromium, no build), so they skip with that reason.
"""

from __future__ import annotations

import base64
import functools
import http.server
import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.browser_analysis import BUILD_DIR, build_problem, model_assets
from settings import Settings
from tests.e2e.clinic_harness import CHROMIUM, CHROMIUM_ARGS


def bundle_skip_reason() -> str:
    if not CHROMIUM.exists():
        return "Debian chromium is not installed (/usr/bin/chromium)"
    return build_problem()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".js": "text/javascript"}

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class BundleServer:
    def __init__(self, root: Path = BUILD_DIR) -> None:
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def launch(playwright) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def open_bundle_page(browser, server: BundleServer):
    page = browser.new_page()
    page.goto(f"{server.url}/index.html")
    page.wait_for_function("() => !!window.psyaAnalysis", timeout=60_000)
    return page


def load_analyzer(page, settings: Settings) -> None:
    """window.analyzer = the in-page Analyzer with the configured model."""
    page.evaluate(
        """async (models) => { window.analyzer = await window.psyaAnalysis.Analyzer.load('./wasm/', models); }""",
        model_assets(settings),
    )


def rgba_b64(image: np.ndarray) -> str:
    """An RGB (H, W, 3) or gray (H, W) uint8 image as base64 RGBA bytes (what a canvas gives the page)."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    rgba = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], axis=2)
    return base64.b64encode(np.ascontiguousarray(rgba).tobytes()).decode("ascii")


DECODE_JS = """(b64) => { const s = atob(b64); const a = new Uint8ClampedArray(s.length);
  for (let i = 0; i < s.length; i++) a[i] = s.charCodeAt(i); return a; }"""

CLASSIFY_JS = """async (cases) => {
  const decode = """ + DECODE_JS + """;
  const ops = window.psyaAnalysis.ops;
  const out = [];
  for (const c of cases) {
    const gray = ops.rgbaToGray(decode(c.rgba), c.width, c.height);
    out.push((await window.analyzer.classify(gray, c.box)).probabilities);
  }
  return out;
}"""

ANALYZE_JS = """async (cases) => {
  const decode = """ + DECODE_JS + """;
  const out = [];
  for (const c of cases) {
    const started = performance.now();
    const result = await window.analyzer.analyzeFrame(decode(c.rgba), c.width, c.height);
    out.push({reading: result.reading, ms: performance.now() - started, detectionMs: result.detectionMs,
              classificationMs: result.classificationMs});
  }
  return out;
}"""


def classify_in_browser(page, cases: list[tuple[np.ndarray, tuple[int, int, int, int]]]) -> np.ndarray:
    """Browser probabilities (N, 7) for (RGB image, face box) pairs."""
    payload = [{"rgba": rgba_b64(img), "width": img.shape[1], "height": img.shape[0], "box": list(map(int, box))}
               for img, box in cases]
    return np.asarray(page.evaluate(CLASSIFY_JS, payload), dtype=np.float64)


def analyze_in_browser(page, frames: list[np.ndarray]) -> list[dict]:
    """The browser's whole pipeline (detect + classify) on RGB frames: one {reading, ms, ...} per frame."""
    payload = [{"rgba": rgba_b64(f), "width": f.shape[1], "height": f.shape[0]} for f in frames]
    return page.evaluate(ANALYZE_JS, payload)
