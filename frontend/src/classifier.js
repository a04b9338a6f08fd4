// The FER classifier as fer/classifier.py runs it: resize, optional sharpness matching and histogram equalisation, then
// `pixel * scale + offset` and the model's int8 quantisation, all from the sidecar and the model's tensor details that
// the server reads at run time and hands to this page (nothing model-specific is written here).
import * as ops from "./imageops.js";
import { RawModel } from "./litert.js";

const f32 = Math.fround;
export const LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

export class EmotionClassifier {
  // spec: {sidecar: the parsed JSON, input: {dtype, shape, scale, zero_point}, output: {...}}
  static async load(bytes, spec) {
    const model = await RawModel.load(bytes, [spec.input], [spec.output]);
    return new EmotionClassifier(model, spec);
  }

  constructor(model, spec) {
    this.model = model;
    this.spec = spec;
    const norm = spec.sidecar.normalization;
    this.inputSize = spec.sidecar.input_size; // [height, width]
    this.scale = norm.scale;
    this.offset = norm.offset;
    this.equalize = norm.equalize_histogram === true;
    // fer.metadata refuses a sidecar asking for the retired blur matching (models of the old blurred train split);
    // so does the browser, which then falls back to server mode, where the same refusal is shown.
    for (const retired of ["max_laplacian_variance", "blur_sigma"]) {
      if (Number(norm[retired] ?? 0) > 0) {
        throw new Error(`the model's sidecar asks for ${retired} (retired blur matching): re-export the model`);
      }
    }
    const labels = spec.sidecar.labels ?? LABELS;
    this.labelOrder = LABELS.map((label) => labels.indexOf(label));
  }

  // EmotionClassifier._resize: the 2-D uint8 face at the model's input size, as the model was trained.
  prepareFace(face) {
    const [height, width] = this.inputSize;
    let resized = ops.resizeFace(face, height, width);
    return this.equalize ? ops.equalizeHist(resized) : resized;
  }

  // EmotionClassifier.prepare's normalisation + _quantize, in float32 like NumPy.
  inputTensor(prepared) {
    const { dtype, scale: qScale, zero_point: zeroPoint } = this.spec.input;
    const scale = f32(this.scale);
    const offset = f32(this.offset);
    const n = prepared.data.length;
    if (dtype === "float32") {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f32(f32(prepared.data[i] * scale) + offset);
      return out;
    }
    const [lo, hi] = dtype === "int8" ? [-128, 127] : [0, 255];
    const out = dtype === "int8" ? new Int8Array(n) : new Uint8Array(n);
    const q = f32(qScale);
    for (let i = 0; i < n; i++) {
      const value = f32(f32(prepared.data[i] * scale) + offset);
      const level = ops.roundHalfEven(f32(value / q)) + zeroPoint;
      out[i] = Math.min(hi, Math.max(lo, level));
    }
    return out;
  }

  // Probabilities (7, LABELS order) for one grayscale face of any size.
  async predict(face) {
    const prepared = this.prepareFace(face);
    const [raw] = await this.model.run([this.inputTensor(prepared)]);
    const { dtype, scale, zero_point: zeroPoint } = this.spec.output;
    const scores = this.labelOrder.map((column) =>
      dtype === "float32" ? raw[column] : f32(f32(raw[column] - zeroPoint) * f32(scale || 1)),
    );
    return toProbabilities(scores);
  }
}

// fer.classifier._to_probabilities: softmax for logits, renormalisation for (de)quantised probabilities.
export function toProbabilities(scores) {
  const min = Math.min(...scores);
  const max = Math.max(...scores);
  if (min < -1e-3 || max > 1 + 1e-3) {
    const exps = scores.map((s) => Math.exp(s - max));
    const total = exps.reduce((a, b) => a + b, 0);
    return exps.map((e) => e / total);
  }
  const clipped = scores.map((s) => Math.max(0, s));
  const total = clipped.reduce((a, b) => a + b, 0);
  return total > 0 ? clipped.map((s) => s / total) : clipped.map(() => 1 / clipped.length);
}
