// The join page's browser-analysis component (a Streamlit custom component, served by the app from frontend/build).
//
// The camera never leaves this page: frames are analysed here at `fps`, and only readings (time, 7 probabilities, face
// box, face count, quality) go back to Python through Streamlit.setComponentValue, batched about once a second. Python
// acknowledges each batch by its sequence number (args.ack); readings stay queued here, and are sent again, until a
// batch holding them is acknowledged. Each reading has a UUID made here, so a re-sent reading is never stored twice.
// While the page is open a batch goes out about once a second even with no reading in it (no face seen, camera off):
// the clinician's dashboard tells "no face" (batches keep coming) from "patient gone" (they stop: tab closed, network
// lost).
//
// The Streamlit component protocol is a few postMessage calls, written out below (no extra npm package).
import { Analyzer } from "./pipeline.js";
import * as ops from "./imageops.js";
import { LABELS } from "./classifier.js";

function send(type, data = {}) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}
const setValue = (value) => send("streamlit:setComponentValue", { value, dataType: "json" });
const setHeight = () => send("streamlit:setFrameHeight", { height: document.body.scrollHeight + 8 });

function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const MAX_QUEUED = 3600; // readings kept while unacknowledged (15 minutes at 4 fps); beyond that the oldest go
const MAX_PER_BATCH = 500;

const state = {
  args: null,
  analyzer: null,
  loading: null,
  stream: null,
  timer: null,
  heartbeat: null, // sends a batch about once a second while the page is open, readings or not
  busy: false,
  queue: [], // readings not yet acknowledged
  inFlight: new Map(), // seq -> number of readings (from the head of the queue) that batch carried
  seq: 0,
  lastSentAt: 0,
  stats: { frames_analysed: 0, frames_without_face: 0, analysis_ms_total: 0, errors: 0, since_face: 0 },
  lastDominant: "",
};

const ui = {};
function buildUi() {
  document.body.innerHTML = `
    <style>
      body { font-family: "Source Sans Pro", sans-serif; margin: 0; color: #31333f; }
      button { font-size: 1rem; padding: .4rem 1rem; border-radius: .5rem; border: 1px solid #ccc; background: #fff; cursor: pointer; }
      button:disabled { opacity: .5; cursor: default; }
      video { width: 100%; max-width: 640px; background: #000; border-radius: .5rem; display: none; transform: scaleX(-1); }
      #status { margin: .5rem 0; }
      .note { color: #555; font-size: .9rem; }
    </style>
    <div><button id="start" disabled>Start camera</button> <button id="stop" disabled>Stop</button></div>
    <p id="status">Preparing the analysis in your browser…</p>
    <video id="video" autoplay muted playsinline></video>
    <p class="note" id="note">Your video stays on this device: it is analysed here, in this page, and is not sent anywhere.</p>`;
  ui.start = document.getElementById("start");
  ui.stop = document.getElementById("stop");
  ui.status = document.getElementById("status");
  ui.video = document.getElementById("video");
  ui.start.onclick = startCamera;
  ui.stop.onclick = () => stopCamera("Camera off. Press Start camera when you are ready.");
  ui.canvas = document.createElement("canvas");
  setHeight();
}

function setStatus(text) {
  ui.status.textContent = text;
  setHeight();
}

async function ensureAnalyzer() {
  if (!state.loading) {
    state.loading = Analyzer.load("./wasm/", state.args.models).then(
      (analyzer) => {
        state.analyzer = analyzer;
        setValue({ kind: "ready", seq: 0, user_agent: navigator.userAgent });
        if (!state.heartbeat && !state.args.ended) state.heartbeat = setInterval(() => flush(false), state.args.batch_interval_ms);
        ui.start.disabled = false;
        setStatus("Camera off. Press Start camera when you are ready.");
      },
      (error) => {
        // Python then switches this patient to server analysis (and says so to them and to the clinician).
        setValue({ kind: "unsupported", reason: String(error && error.message ? error.message : error).slice(0, 300) });
        setStatus("This browser cannot run the analysis itself.");
      },
    );
  }
  return state.loading;
}

async function startCamera() {
  if (!state.analyzer || state.stream) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("This browser cannot share a camera here (a secure https link is needed).");
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ video: state.args.media_constraints, audio: false });
  } catch (error) {
    setStatus(error && error.name === "NotAllowedError"
      ? "The camera is blocked. Allow camera access for this site in your browser, then reload."
      : `The camera could not be started (${error && error.name ? error.name : error}).`);
    return;
  }
  ui.video.srcObject = state.stream;
  ui.video.style.display = "block";
  ui.start.disabled = true;
  ui.stop.disabled = false;
  setStatus("Camera on. Starting analysis…");
  state.timer = setInterval(tick, 1000 / state.args.fps);
}

function stopCamera(message) {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  if (state.stream) for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  ui.video.srcObject = null;
  ui.video.style.display = "none";
  ui.start.disabled = !state.analyzer || state.args.ended;
  ui.stop.disabled = true;
  flush(true);
  if (message) setStatus(message);
}

async function tick() {
  flush(false);
  const video = ui.video;
  if (state.busy || !video.videoWidth || video.readyState < 2) return; // never queue frames: drop while busy
  state.busy = true;
  try {
    const width = video.videoWidth;
    const height = video.videoHeight;
    ui.canvas.width = width;
    ui.canvas.height = height;
    const context = ui.canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(video, 0, 0, width, height);
    const capturedAt = Date.now();
    const pixels = context.getImageData(0, 0, width, height).data;
    const result = await state.analyzer.analyzeFrame(pixels, width, height);
    const s = state.stats;
    s.frames_analysed += 1;
    s.analysis_ms_total += result.detectionMs + result.classificationMs;
    if (!result.reading) {
      s.frames_without_face += 1;
      s.since_face += 1;
    } else {
      s.since_face = 0;
      const r = result.reading;
      state.queue.push({ id: uuid4(), t: capturedAt, p: r.probabilities, box: r.box, faces: r.faces, quality: r.quality });
      if (state.queue.length > MAX_QUEUED) state.queue.splice(0, state.queue.length - MAX_QUEUED);
      state.lastDominant = LABELS[r.probabilities.indexOf(Math.max(...r.probabilities))];
    }
    showProgress();
  } catch (error) {
    state.stats.errors += 1;
    console.error("analysing a frame failed", error);
  } finally {
    state.busy = false;
  }
}

function showProgress() {
  const s = state.stats;
  let text = `Connected: ${s.frames_analysed} frames analysed on this device.`;
  if (s.since_face >= 8) text += " No face is visible: please sit facing the camera, in good light.";
  if (state.args.show_emotions && state.lastDominant) text += ` Current expression: ${state.lastDominant}.`;
  setStatus(text);
}

// Send the unacknowledged readings about once a second (an empty batch when there are none: the page's heartbeat);
// `force` sends what is queued at once (the camera stops), and nothing when the queue is empty.
function flush(force) {
  const now = Date.now();
  if (force ? !state.queue.length : now - state.lastSentAt < state.args.batch_interval_ms) return;
  state.seq += 1;
  const readings = state.queue.slice(0, MAX_PER_BATCH);
  state.inFlight.set(state.seq, readings.map((r) => r.id));
  const s = state.stats;
  setValue({
    kind: "readings",
    seq: state.seq,
    // this browser's clock now: the server compares it with its own on receipt and moves the capture times (`t`)
    // onto its clock (app/browser_analysis.py, BrowserClock), so a computer clock set wrong cannot move Stop
    sent_at: Date.now(),
    readings,
    stats: {
      frames_analysed: s.frames_analysed,
      frames_without_face: s.frames_without_face,
      errors: s.errors,
      mean_analysis_ms: s.frames_analysed ? s.analysis_ms_total / s.frames_analysed : 0,
    },
  });
  state.lastSentAt = now;
}

function acknowledge(ack) {
  for (const [seq, ids] of state.inFlight) {
    if (seq > ack) continue;
    const done = new Set(ids);
    state.queue = state.queue.filter((r) => !done.has(r.id));
    state.inFlight.delete(seq);
  }
}

function onRender(args) {
  const first = state.args === null;
  state.args = args;
  if (first) buildUi();
  acknowledge(args.ack ?? 0);
  if (args.ended) {
    if (state.heartbeat) clearInterval(state.heartbeat);
    state.heartbeat = null;
    stopCamera("Your clinician has ended this session. You can close this page.");
    ui.start.disabled = true;
    return;
  }
  ensureAnalyzer();
}

window.addEventListener("message", (event) => {
  const data = event.data;
  if (data && data.type === "streamlit:render") onRender(data.args);
});

// For the parity test and the benchmark (tests/e2e/test_browser_parity.py, bench/browser.py), which load this bundle
// outside Streamlit.
window.psyaAnalysis = { Analyzer, ops };

if (window.parent !== window) send("streamlit:componentReady", { apiVersion: 1 });
