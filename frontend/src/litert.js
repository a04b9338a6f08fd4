// The shipped TFLite models through LiteRT.js's lower-level wasm bindings.
//
// Why not `loadAndCompile`/`run`: that API's type table has no INT8 ("Element type INT8 is not supported") and it
// refuses the FER model's dynamic batch dimension. The bindings underneath (`loadModel`/`compileModel` with a ranked
// tensor type we build ourselves) accept the model as it is, so the browser runs the very file Python runs.
import { getGlobalLiteRt, loadLiteRt } from "@litertjs/core";

const ELEMENT_TYPES = { float32: 1, uint8: 3, int8: 9 };
const ARRAYS = { float32: Float32Array, uint8: Uint8Array, int8: Int8Array };

let runtimePromise = null;

// Load the LiteRT wasm from `wasmDir` (served by the app itself, next to this bundle). Picks the relaxed-SIMD build
// when the browser has it, else the compatible one. Threads are not used: they need COOP/COEP headers and gave no
// speed-up on the machines measured.
export function loadRuntime(wasmDir) {
  if (!runtimePromise) runtimePromise = loadLiteRt(wasmDir);
  return runtimePromise;
}

export class RawModel {
  // `inputs`/`outputs`: [{dtype, shape}] as Python's interpreter reports them (batch fixed to 1).
  static async load(bytes, inputs, outputs) {
    const liteRt = getGlobalLiteRt();
    const wasm = liteRt.liteRtWasm;
    const environment = liteRt.getDefaultEnvironment().liteRtEnvironment;
    const pointer = wasm._malloc(bytes.byteLength);
    wasm.HEAPU8.set(bytes, pointer);
    const model = wasm.loadModel(environment, pointer, bytes.byteLength);
    const compiled = await wasm.compileModel(environment, model, {
      accelerator: "wasm",
      cpuOptions: { numThreads: 1 },
      gpuOptions: {},
      webNNOptions: {},
    });
    return new RawModel(wasm, environment, model, compiled, pointer, inputs, outputs);
  }

  constructor(wasm, environment, model, compiled, pointer, inputs, outputs) {
    this.wasm = wasm;
    this.environment = environment;
    this.model = model;
    this.compiled = compiled;
    this.pointer = pointer;
    this.inputs = inputs;
    this.outputs = outputs;
  }

  tensorType(spec) {
    const wasm = this.wasm;
    const dims = new wasm.VectorInt32();
    for (const d of spec.shape) dims.push_back(d);
    const layout = wasm.LiteRtLayout.create(dims);
    dims.delete();
    const type = wasm.LiteRtRankedTensorType.create({ value: ELEMENT_TYPES[spec.dtype] }, layout);
    layout.delete();
    return type;
  }

  // One invoke: `data` is a typed array per input; returns a typed array per output (in the model's output order).
  async run(data) {
    const wasm = this.wasm;
    const buffers = this.inputs.map((spec, i) => {
      const type = this.tensorType(spec);
      const size = type.bytes();
      const bytes = new Uint8Array(data[i].buffer, data[i].byteOffset, data[i].byteLength);
      if (bytes.byteLength !== size) {
        type.delete();
        throw new Error(`input ${i}: ${bytes.byteLength} bytes given, the model takes ${size}`);
      }
      const buffer = wasm.LiteRtTensorBuffer.createManaged(this.environment, wasm.LiteRtTensorBufferType.HOST_MEMORY, type, size);
      type.delete();
      const at = buffer.lock(wasm.LiteRtTensorBufferLockMode.WRITE);
      try {
        wasm.HEAPU8.set(bytes, at);
      } finally {
        buffer.unlock();
      }
      return buffer;
    });
    let results;
    try {
      results = await this.compiled.run(0, buffers);
    } finally {
      for (const buffer of buffers) buffer.delete();
    }
    return results.map((buffer, i) => {
      try {
        const at = buffer.lock(wasm.LiteRtTensorBufferLockMode.READ);
        const copy = wasm.HEAPU8.slice(at, at + buffer.packedSize());
        buffer.unlock();
        const Array_ = ARRAYS[this.outputs[i].dtype];
        return new Array_(copy.buffer, copy.byteOffset, copy.byteLength / Array_.BYTES_PER_ELEMENT);
      } finally {
        buffer.delete();
      }
    });
  }
}
