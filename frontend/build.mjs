// Builds frontend/build (served by the app as a Streamlit component): the esbuild bundle, index.html and LiteRT.js's
// wasm runtime copied from the npm package. Run by `make` (npm ci && node build.mjs); the output is not committed.
// The models are not copied here: the app copies the configured model and BlazeFace into build/models at run time, so a
// replaced model is served without a rebuild.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const out = join(root, "build");
const wasmSource = join(root, "node_modules", "@litertjs", "core", "wasm");
// The relaxed-SIMD build and the compatible one for browsers without relaxed SIMD (LiteRT.js picks at run time).
const WASM_FILES = ["litert_wasm_internal.js", "litert_wasm_internal.wasm", "litert_wasm_compat_internal.js",
  "litert_wasm_compat_internal.wasm"];

rmSync(join(out, "bundle.js"), { force: true });
mkdirSync(join(out, "wasm"), { recursive: true });
await build({
  entryPoints: [join(root, "src", "main.js")],
  bundle: true,
  format: "iife",
  target: ["chrome100", "firefox110", "safari16"],
  outfile: join(out, "bundle.js"),
  minify: true,
  sourcemap: false,
  legalComments: "linked",
  logLevel: "warning",
});
copyFileSync(join(root, "index.html"), join(out, "index.html"));
for (const name of WASM_FILES) copyFileSync(join(wasmSource, name), join(out, "wasm", name));
console.log(`built ${out}`);
