// One frame in, at most one reading out: BlazeFace finds the faces, the largest (the patient, closest to their own
// camera) is margin-cropped from the grayscale frame as fer/preprocess.py does and classified. The same steps as
// fer.analyze + app.remote.reading_from_faces on the server.
import { BlazeFace } from "./blazeface.js";
import { EmotionClassifier } from "./classifier.js";
import * as ops from "./imageops.js";
import { loadRuntime } from "./litert.js";

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

export class Analyzer {
  // models: {classifier: {url, spec}, detector: {url, spec}} as app/browser_analysis.py describes them.
  static async load(wasmDir, models) {
    if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
    await loadRuntime(wasmDir);
    const [classifierBytes, detectorBytes] = await Promise.all([fetchBytes(models.classifier.url), fetchBytes(models.detector.url)]);
    const classifier = await EmotionClassifier.load(classifierBytes, models.classifier.spec);
    const detector = await BlazeFace.load(detectorBytes, models.detector.spec);
    return new Analyzer(classifier, detector);
  }

  constructor(classifier, detector) {
    this.classifier = classifier;
    this.detector = detector;
  }

  // The probabilities of the face at `box` in an RGBA (canvas) frame: the classifier half of the pipeline.
  async classify(gray, box) {
    const face = ops.marginCrop(gray, box);
    const prepared = this.classifier.prepareFace(face);
    return { probabilities: await this.classifier.predict(face), sharpness: ops.laplacianVariance(prepared) };
  }

  // A reading for one RGBA frame (ImageData-like), or null when no face is visible.
  async analyzeFrame(rgba, width, height) {
    const started = performance.now();
    const boxes = await this.detector.detect(ops.rgbaToRgb(rgba, width, height));
    const detected = performance.now();
    if (!boxes.length) return { reading: null, detectionMs: detected - started, classificationMs: 0 };
    const [x, y, w, h, score] = boxes[0];
    const gray = ops.rgbaToGray(rgba, width, height);
    const { probabilities, sharpness } = await this.classify(gray, [x, y, w, h]);
    const finished = performance.now();
    return {
      reading: { probabilities, box: [x, y, w, h], faces: boxes.length, quality: { detector_score: score, sharpness } },
      detectionMs: detected - started,
      classificationMs: finished - detected,
    };
  }
}
