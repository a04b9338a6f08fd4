// Pixel operations ported from OpenCV (as the Python pipeline calls them in fer/preprocess.py, fer/classifier.py and
// fer/detection.py), so that the browser feeds the model the same bytes as Python does. Images are plain objects
// {data: Uint8Array|Uint8ClampedArray, width, height, channels}. Where OpenCV works in float32 or fixed point, so does
// this port (Math.fround, integer arithmetic): tests/e2e/test_browser_parity.py compares the results with OpenCV's.

const f32 = Math.fround;

export function image(data, width, height, channels = 1) {
  return { data, width, height, channels };
}

// cvRound / saturate_cast<uchar>(float): round half to even, then clamp to 0..255.
export function roundHalfEven(value) {
  const floor = Math.floor(value);
  const diff = value - floor;
  let rounded;
  if (diff > 0.5) rounded = floor + 1;
  else if (diff < 0.5) rounded = floor;
  else rounded = floor % 2 === 0 ? floor : floor + 1;
  return rounded;
}

function saturateU8(value) {
  const r = roundHalfEven(value);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

// cv2.cvtColor(RGB(A)2GRAY) for uint8: fixed point with 14 fraction bits.
export function rgbaToGray(rgba, width, height, channels = 4) {
  const out = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < out.length; i++, j += channels) {
    out[i] = (rgba[j] * 4899 + rgba[j + 1] * 9617 + rgba[j + 2] * 1868 + 8192) >> 14;
  }
  return image(out, width, height, 1);
}

// RGBA -> RGB (drops alpha), for the face detector.
export function rgbaToRgb(rgba, width, height) {
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < out.length; i += 3, j += 4) {
    out[i] = rgba[j];
    out[i + 1] = rgba[j + 1];
    out[i + 2] = rgba[j + 2];
  }
  return image(out, width, height, 3);
}

export function crop(img, x0, y0, x1, y1) {
  const { width, channels } = img;
  const w = x1 - x0;
  const h = y1 - y0;
  const out = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    const start = ((y0 + y) * width + x0) * channels;
    out.set(img.data.subarray(start, start + w * channels), y * w * channels);
  }
  return image(out, w, h, channels);
}

// fer.preprocess.margin_crop: the seed's crop (y:y+17h/16, x-w/32:x+33w/32), clamped to the frame.
export function marginCrop(gray, box) {
  const [bx, by, bw, bh] = box;
  const x0 = Math.max(0, Math.trunc(bx - bw / 32));
  const x1 = Math.min(gray.width, Math.trunc(bx + (33 * bw) / 32));
  const y0 = Math.max(0, Math.trunc(by));
  const y1 = Math.min(gray.height, Math.trunc(by + (17 * bh) / 16));
  if (x1 <= x0 || y1 <= y0) throw new Error(`face box ${box} lies outside the ${gray.width}x${gray.height} frame`);
  return crop(gray, x0, y0, x1, y1);
}

// --- cv2.resize ------------------------------------------------------------------------------------------------------

// OpenCV's computeResizeAreaTab: (dst index, src index, float32 weight) triples for one axis, as typed arrays.
function areaTable(ssize, dsize, scale) {
  const di = [];
  const si = [];
  const alpha = [];
  const push = (d, s, a) => {
    di.push(d);
    si.push(s);
    alpha.push(a);
  };
  for (let dx = 0; dx < dsize; dx++) {
    const fsx1 = dx * scale;
    const fsx2 = fsx1 + scale;
    const cellWidth = Math.min(scale, ssize - fsx1);
    let sx1 = Math.ceil(fsx1);
    let sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, ssize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) push(dx, sx1 - 1, f32((sx1 - fsx1) / cellWidth));
    for (let sx = sx1; sx < sx2; sx++) push(dx, sx, f32(1.0 / cellWidth));
    if (fsx2 - sx2 > 1e-3) push(dx, sx2, f32(Math.min(Math.min(fsx2 - sx2, 1), cellWidth) / cellWidth));
  }
  return { di: Int32Array.from(di), si: Int32Array.from(si), alpha: Float32Array.from(alpha), length: di.length };
}

function resizeAreaFast(img, dw, dh, sx, sy) {
  const { data, width, channels: cn } = img;
  const out = new Uint8Array(dw * dh * cn);
  const area = sx * sy;
  const inv = f32(1 / area);
  for (let y = 0; y < dh; y++) {
    for (let x = 0; x < dw; x++) {
      for (let c = 0; c < cn; c++) {
        let sum = 0;
        for (let j = 0; j < sy; j++) {
          const row = (y * sy + j) * width;
          for (let i = 0; i < sx; i++) sum += data[(row + x * sx + i) * cn + c];
        }
        out[(y * dw + x) * cn + c] = area === 4 ? (sum + 2) >> 2 : saturateU8(f32(sum * inv));
      }
    }
  }
  return image(out, dw, dh, cn);
}

// cv2.INTER_AREA when shrinking on both axes (OpenCV's ResizeArea_Invoker: float32 row sums, then rows weighted).
function resizeArea(img, dw, dh) {
  const { data, width, height, channels: cn } = img;
  const scaleX = width / dw;
  const scaleY = height / dh;
  const ix = Math.round(scaleX);
  const iy = Math.round(scaleY);
  if (Math.abs(scaleX - ix) < Number.EPSILON && Math.abs(scaleY - iy) < Number.EPSILON) {
    return resizeAreaFast(img, dw, dh, ix, iy);
  }
  const xt = areaTable(width, dw, scaleX);
  const yt = areaTable(height, dh, scaleY);
  const out = new Uint8Array(dw * dh * cn);
  const rowLen = dw * cn;
  const buf = new Float32Array(rowLen);
  const sum = new Float32Array(rowLen);
  const { di, si, alpha } = xt;
  let prevDy = yt.di[0];
  for (let k = 0; k < yt.length; k++) {
    const dy = yt.di[k];
    const beta = yt.alpha[k];
    buf.fill(0);
    const rowStart = yt.si[k] * width * cn;
    for (let j = 0; j < xt.length; j++) {
      const a = alpha[j];
      const d = di[j] * cn;
      const src = rowStart + si[j] * cn;
      for (let c = 0; c < cn; c++) buf[d + c] = buf[d + c] + f32(data[src + c] * a);
    }
    if (dy !== prevDy) {
      const base = prevDy * rowLen;
      for (let d = 0; d < rowLen; d++) {
        out[base + d] = saturateU8(sum[d]);
        sum[d] = beta * buf[d];
      }
      prevDy = dy;
    } else {
      for (let d = 0; d < rowLen; d++) sum[d] = sum[d] + f32(beta * buf[d]);
    }
  }
  for (let d = 0; d < rowLen; d++) out[prevDy * rowLen + d] = saturateU8(sum[d]);
  return image(out, dw, dh, cn);
}

// OpenCV's resizeGeneric coefficients for one axis: source index and the two 11-bit fixed-point weights.
function linearTable(ssize, dsize, area) {
  const scale = ssize / dsize;
  const invScale = dsize / ssize;
  const ofs = new Int32Array(dsize);
  const a0 = new Int32Array(dsize);
  const a1 = new Int32Array(dsize);
  for (let d = 0; d < dsize; d++) {
    let s;
    let fx;
    if (!area) {
      fx = f32((d + 0.5) * scale - 0.5);
      s = Math.floor(fx);
      fx = f32(fx - s);
    } else {
      s = Math.floor(d * scale);
      fx = f32(d + 1 - (s + 1) * invScale);
      fx = fx <= 0 ? 0 : f32(fx - Math.floor(fx));
    }
    if (s < 0) {
      fx = 0;
      s = 0;
    }
    if (s >= ssize - 1) {
      fx = 0;
      s = ssize - 1;
    }
    ofs[d] = s;
    a0[d] = roundHalfEven(f32(f32(1 - fx) * 2048));
    a1[d] = roundHalfEven(f32(fx * 2048));
  }
  return { ofs, a0, a1 };
}

// cv2.INTER_LINEAR (and INTER_AREA when enlarging) for uint8: fixed point, OpenCV's SIMD rounding of the vertical pass.
function resizeLinear(img, dw, dh, area) {
  const { data, width, height, channels: cn } = img;
  const xt = linearTable(width, dw, area);
  const yt = linearTable(height, dh, area);
  const rowLen = dw * cn;
  const hrow = (sy) => {
    const row = new Int32Array(rowLen);
    const base = sy * width * cn;
    for (let x = 0; x < dw; x++) {
      const sx = xt.ofs[x];
      const sx1 = Math.min(sx + 1, width - 1);
      for (let c = 0; c < cn; c++) {
        row[x * cn + c] = data[base + sx * cn + c] * xt.a0[x] + data[base + sx1 * cn + c] * xt.a1[x];
      }
    }
    return row;
  };
  const out = new Uint8Array(rowLen * dh);
  for (let y = 0; y < dh; y++) {
    const sy = yt.ofs[y];
    const r0 = hrow(sy);
    const r1 = hrow(Math.min(sy + 1, height - 1));
    const b0 = yt.a0[y];
    const b1 = yt.a1[y];
    for (let d = 0; d < rowLen; d++) {
      const v = (((b0 * (r0[d] >> 4)) >> 16) + ((b1 * (r1[d] >> 4)) >> 16) + 2) >> 2;
      out[y * rowLen + d] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return image(out, dw, dh, cn);
}

// cv2.resize(img, (dw, dh), interpolation=INTER_AREA | INTER_LINEAR).
export function resize(img, dw, dh, interpolation) {
  if (img.width === dw && img.height === dh) return img;
  if (interpolation === "area") {
    if (img.width >= dw && img.height >= dh) return resizeArea(img, dw, dh);
    return resizeLinear(img, dw, dh, true);
  }
  return resizeLinear(img, dw, dh, false);
}

// fer.preprocess.resize_face: INTER_AREA when shrinking (either side larger than the target), linear when enlarging.
export function resizeFace(face, height, width) {
  if (face.height === height && face.width === width) return face;
  const shrinking = face.height > height || face.width > width;
  return resize(face, width, height, shrinking ? "area" : "linear");
}

// --- sharpness, blur, equalisation (gray only) -----------------------------------------------------------------------

function reflect101(i, n) {
  if (n === 1) return 0;
  while (i < 0 || i >= n) {
    if (i < 0) i = -i;
    if (i >= n) i = 2 * n - 2 - i;
  }
  return i;
}

// cv2.Laplacian(face, CV_64F).var(): 3x3 kernel [0 1 0; 1 -4 1; 0 1 0], reflect-101 border, population variance.
export function laplacianVariance(gray) {
  const { data, width: w, height: h } = gray;
  const values = new Float64Array(w * h);
  for (let y = 0; y < h; y++) {
    const up = reflect101(y - 1, h) * w;
    const down = reflect101(y + 1, h) * w;
    for (let x = 0; x < w; x++) {
      const left = reflect101(x - 1, w);
      const right = reflect101(x + 1, w);
      values[y * w + x] = data[up + x] + data[down + x] + data[y * w + left] + data[y * w + right] - 4 * data[y * w + x];
    }
  }
  let mean = 0;
  for (const v of values) mean += v;
  mean /= values.length;
  let variance = 0;
  for (const v of values) variance += (v - mean) * (v - mean);
  return variance / values.length;
}

// OpenCV's bit-exact Gaussian kernel (getGaussianKernelBitExact) in 8-bit fixed point with error diffusion
// (getGaussianKernelFixedPoint_ED): the kernel cv2.GaussianBlur uses for uint8 images.
export function gaussianKernelFixed(sigma) {
  const n = Math.round(sigma * 3 * 2 + 1) | 1;
  const half = n >> 1;
  const res = new Float64Array(n);
  const scale2 = -0.5 / (sigma * sigma);
  let sum = 0;
  for (let i = 0; i < half; i++) {
    const x = i - half;
    const t = Math.exp(x * x * scale2);
    res[i] = t;
    res[n - 1 - i] = t;
    sum += t;
  }
  sum = sum * 2 + 1;
  const mul = 1 / sum;
  for (let i = 0; i < half; i++) {
    res[i] *= mul;
    res[n - 1 - i] = res[i];
  }
  res[half] = mul;
  const fixed = new Int32Array(n);
  let err = 0;
  let total = 0;
  for (let i = 0; i < half; i++) {
    const adj = res[i] * 256 + err;
    const v = roundHalfEven(adj);
    err = adj - v;
    fixed[i] = v;
    fixed[n - 1 - i] = v;
    total += v;
  }
  fixed[half] = 256 - 2 * total;
  return fixed;
}

// Source index of every tap at every position along a line of `n` pixels (reflect-101 border), precomputed once.
function tapIndex(n, taps) {
  const half = taps >> 1;
  const index = new Int32Array(n * taps);
  for (let x = 0; x < n; x++) for (let i = 0; i < taps; i++) index[x * taps + i] = reflect101(x + i - half, n);
  return index;
}

// cv2.GaussianBlur(face, (0, 0), sigma) for uint8: separable fixed point (8 + 8 fraction bits), reflect-101 border.
export function gaussianBlur(gray, sigma) {
  const { data, width: w, height: h } = gray;
  const k = gaussianKernelFixed(sigma);
  const taps = k.length;
  const xs = tapIndex(w, taps);
  const ys = tapIndex(h, taps);
  const horizontal = new Int32Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let s = 0;
      const at = x * taps;
      for (let i = 0; i < taps; i++) s += k[i] * data[row + xs[at + i]];
      horizontal[row + x] = s;
    }
  }
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const at = y * taps;
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let i = 0; i < taps; i++) s += k[i] * horizontal[ys[at + i] * w + x];
      out[y * w + x] = Math.min(255, (s + 32768) >>> 16);
    }
  }
  return image(out, w, h, 1);
}

// fer.preprocess.match_sharpness: blur faces sharper than the model's training faces.
export function matchSharpness(gray, maxLaplacianVariance, blurSigma) {
  if (laplacianVariance(gray) <= maxLaplacianVariance) return gray;
  return gaussianBlur(gray, blurSigma);
}

// cv2.equalizeHist.
export function equalizeHist(gray) {
  const { data } = gray;
  const hist = new Int32Array(256);
  for (const v of data) hist[v]++;
  let i = 0;
  while (!hist[i]) i++;
  const total = data.length;
  const out = new Uint8Array(total);
  if (hist[i] === total) {
    out.fill(i);
    return image(out, gray.width, gray.height, 1);
  }
  const scale = f32(255 / (total - hist[i]));
  const lut = new Uint8Array(256);
  let sum = 0;
  for (lut[i++] = 0; i < 256; i++) {
    sum += hist[i];
    lut[i] = saturateU8(f32(sum * scale));
  }
  for (let j = 0; j < total; j++) out[j] = lut[data[j]];
  return image(out, gray.width, gray.height, 1);
}
