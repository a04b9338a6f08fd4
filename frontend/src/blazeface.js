// fer.detection.BlazeFaceDetector ported: the shipped BlazeFace (back camera, 256x256) through LiteRT.js, letterboxed
// frames, MediaPipe's SSD anchors, weighted NMS and the same box correction to FER2013's forehead-to-chin framing.
// Video frames only: the whole frame, plus two square tiles for wide (16:9) frames; the fine grid fer uses for large
// still photos (short side > 1200 px) is left out, a webcam never sends such frames.
import * as ops from "./imageops.js";
import { RawModel } from "./litert.js";

const INPUT_SIZE = 256;
const STRIDES = [16, 32, 32, 32];
const TILE_ASPECT = 1.5;
const BOX_SCALE = 1.16;
const BOX_SHIFT_UP = 0.11;

export function ssdAnchors(inputSize = INPUT_SIZE, strides = STRIDES) {
  const centres = [];
  let layer = 0;
  while (layer < strides.length) {
    let repeats = 0;
    let last = layer;
    while (last < strides.length && strides[last] === strides[layer]) {
      repeats += 2;
      last += 1;
    }
    const cells = Math.floor(inputSize / strides[layer]);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let r = 0; r < repeats; r++) centres.push([(x + 0.5) / cells, (y + 0.5) / cells]);
      }
    }
    layer = last;
  }
  return centres;
}

function iou(a, b) {
  const ix = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const iy = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = ix * iy;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return inter / Math.max(union, 1e-6);
}

function insideFraction(box, other) {
  const ix = Math.max(0, Math.min(box[2], other[2]) - Math.max(box[0], other[0]));
  const iy = Math.max(0, Math.min(box[3], other[3]) - Math.max(box[1], other[1]));
  return (ix * iy) / Math.max((box[2] - box[0]) * (box[3] - box[1]), 1e-6);
}

// fer.detection.weighted_nms: rows [x0, y0, x1, y1, score].
export function weightedNms(rows, iouThreshold, containment = 0.6) {
  let remaining = [...rows].sort((a, b) => b[4] - a[4]);
  const kept = [];
  while (remaining.length) {
    const best = remaining[0];
    const group = [];
    const rest = [];
    remaining.forEach((row, i) => (i === 0 || iou(best, row) > iouThreshold ? group : rest).push(row));
    const weight = group.reduce((s, r) => s + r[4], 0);
    const merged = [0, 1, 2, 3].map((k) => group.reduce((s, r) => s + r[k] * r[4], 0) / weight);
    merged.push(best[4]);
    remaining = rest;
    if (!kept.some((other) => insideFraction(merged, other) > containment)) kept.push(merged);
  }
  return kept;
}

export class BlazeFace {
  static async load(bytes, spec) {
    const model = await RawModel.load(bytes, spec.inputs, spec.outputs);
    return new BlazeFace(model, spec);
  }

  constructor(model, spec) {
    this.model = model;
    // Output order differs between conversions: regressors have 16 values per anchor, scores 1.
    this.boxesIndex = spec.outputs.findIndex((o) => o.shape[o.shape.length - 1] === 16);
    this.scoresIndex = spec.outputs.findIndex((o) => o.shape[o.shape.length - 1] === 1);
    this.anchors = ssdAnchors();
    this.scoreThreshold = 0.5;
    this.iouThreshold = 0.3;
    this.minFaceFraction = 0.02;
    this.minFacePixels = 24;
  }

  scanRegions(width, height) {
    const regions = [[0, 0, width, height]];
    const short = Math.min(width, height);
    const long = Math.max(width, height);
    if (long > TILE_ASPECT * short) {
      for (const offset of [0, long - short]) {
        regions.push(width > height ? [offset, 0, short, short] : [0, offset, short, short]);
      }
    }
    return regions;
  }

  // Boxes [x, y, w, h, score] of every face in an RGB frame, clamped to it, largest first.
  async detect(rgb) {
    const { width, height } = rgb;
    let rows = [];
    for (const region of this.scanRegions(width, height)) rows = rows.concat(await this.detectRegion(rgb, region));
    const minSide = Math.max(this.minFacePixels, this.minFaceFraction * Math.min(width, height));
    return weightedNms(rows, this.iouThreshold)
      .map((row) => clamp(toFaceBox(row), width, height))
      .filter((b) => b[2] >= minSide && b[3] >= minSide && b[2] > 0 && b[3] > 0)
      .sort((a, b) => b[2] * b[3] - a[2] * a[3]);
  }

  async detectRegion(frame, region) {
    const [dx, dy, rw, rh] = region;
    const rgb = region[2] === frame.width && region[3] === frame.height ? frame : ops.crop(frame, dx, dy, dx + rw, dy + rh);
    const size = INPUT_SIZE;
    const scale = size / Math.max(rgb.width, rgb.height);
    const newW = Math.max(1, Math.round(rgb.width * scale));
    const newH = Math.max(1, Math.round(rgb.height * scale));
    const padX = Math.floor((size - newW) / 2);
    const padY = Math.floor((size - newH) / 2);
    const small = shrink(rgb, newW, newH);
    const tensor = new Float32Array(size * size * 3).fill(-1);
    const k = Math.fround(1 / 127.5);
    for (let y = 0; y < newH; y++) {
      for (let x = 0; x < newW; x++) {
        for (let c = 0; c < 3; c++) {
          tensor[((y + padY) * size + x + padX) * 3 + c] = Math.fround(small.data[(y * newW + x) * 3 + c] * k) - 1;
        }
      }
    }
    const outputs = await this.model.run([tensor]);
    const boxes = outputs[this.boxesIndex];
    const scores = outputs[this.scoresIndex];
    const rows = [];
    const toX = (v) => (v * size - padX) / scale + dx;
    const toY = (v) => (v * size - padY) / scale + dy;
    for (let i = 0; i < this.anchors.length; i++) {
      const score = 1 / (1 + Math.exp(-Math.min(80, Math.max(-80, scores[i]))));
      if (score < this.scoreThreshold) continue;
      const [ax, ay] = this.anchors[i];
      const cx = boxes[i * 16] / size + ax;
      const cy = boxes[i * 16 + 1] / size + ay;
      const hw = boxes[i * 16 + 2] / size / 2;
      const hh = boxes[i * 16 + 3] / size / 2;
      rows.push([toX(cx - hw), toY(cy - hh), toX(cx + hw), toY(cy + hh), score]);
    }
    return rows.filter((row) => !touchesInnerEdge(row, region, frame.width, frame.height));
  }
}

// fer.detection.shrink: a cheap linear step first for frames more than 4x the target, then INTER_AREA.
function shrink(img, width, height) {
  if (img.width > 4 * width && img.height > 4 * height) img = ops.resize(img, 2 * width, 2 * height, "linear");
  return ops.resize(img, width, height, "area");
}

function touchesInnerEdge(row, region, width, height) {
  const [x, y, w, h] = region;
  const margin = 0.01 * Math.max(w, h);
  return (x > 0 && row[0] <= x + margin) || (y > 0 && row[1] <= y + margin) ||
    (x + w < width && row[2] >= x + w - margin) || (y + h < height && row[3] >= y + h - margin);
}

// Python's round(): half to even.
const pyRound = (v) => ops.roundHalfEven(v);

function toFaceBox(row) {
  const [x0, y0, x1, y1, score] = row;
  const side = Math.max(x1 - x0, y1 - y0);
  const newSide = side * BOX_SCALE;
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2 - BOX_SHIFT_UP * side;
  return [pyRound(cx - newSide / 2), pyRound(cy - newSide / 2), pyRound(newSide), pyRound(newSide), score];
}

function clamp(box, width, height) {
  const x0 = Math.max(0, box[0]);
  const y0 = Math.max(0, box[1]);
  const x1 = Math.min(width, box[0] + box[2]);
  const y1 = Math.min(height, box[1] + box[3]);
  return [x0, y0, Math.max(0, x1 - x0), Math.max(0, y1 - y0), box[4]];
}
