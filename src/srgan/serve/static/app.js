// The upscaling page: talks to the server's JSON API only (no third-party code, no network beyond it).
"use strict";

const POLL_INTERVAL_MS = 400;

const elements = Object.fromEntries(
  [
    "file-input", "dropzone", "file-name", "model-select", "scale-select", "upscale-button", "progress",
    "status-text", "viewer", "zoom", "zoom-label", "pixelated", "sizes", "download-link", "viewport", "stage",
    "before-image", "result-image", "divider", "after-tag", "compare-slider",
  ].map((id) => [id, document.getElementById(id)]),
);

const state = { file: null, models: [], limits: {}, beforeUrl: null, busy: false };

function setState(name, message) {
  document.body.dataset.state = name;
  if (message !== undefined) elements["status-text"].textContent = message;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (_) {
    // Not JSON: fall back to the status line below.
  }
  return `server answered ${response.status} ${response.statusText}`;
}

function formatBytes(count) {
  return count >= 1024 * 1024 ? `${(count / (1024 * 1024)).toFixed(1)} MB` : `${Math.ceil(count / 1024)} KB`;
}

async function loadModels() {
  const response = await fetch("/api/models");
  if (!response.ok) throw new Error(await errorMessage(response));
  const catalog = await response.json();
  state.models = catalog.models;
  state.limits = catalog;
  const select = elements["model-select"];
  select.replaceChildren(
    ...catalog.models.map((model) => {
      // The scale is missing only for a model file that does not record it.
      const option = new Option(model.scale ? `${model.name} (×${model.scale})` : model.name, model.name);
      option.title = model.description || "";
      return option;
    }),
  );
  select.value = catalog.default;
  select.disabled = false;
  updateScaleLabel();
}

function selectedModel() {
  return state.models.find((model) => model.name === elements["model-select"].value);
}

function updateScaleLabel() {
  const model = selectedModel();
  elements["scale-select"].options[0].textContent = model && model.scale ? `Model's own (×${model.scale})` : "Model's own";
}

function chooseFile(file) {
  if (!file) return;
  if (state.limits.max_upload_bytes && file.size > state.limits.max_upload_bytes) {
    setState("error", `${file.name} is ${formatBytes(file.size)}; this server accepts up to ` +
      `${formatBytes(state.limits.max_upload_bytes)}.`);
    return;
  }
  state.file = file;
  elements["file-name"].textContent = `${file.name} · ${formatBytes(file.size)}`;
  if (state.beforeUrl) URL.revokeObjectURL(state.beforeUrl);
  state.beforeUrl = URL.createObjectURL(file);
  showBefore(state.beforeUrl);
  elements["upscale-button"].disabled = state.busy;
  setState("ready", "Ready: pick a model and scale, then press Upscale.");
}

function showBefore(url) {
  const before = elements["before-image"];
  before.onload = () => {
    elements["sizes"].textContent = `${before.naturalWidth} × ${before.naturalHeight}`;
    setStageAspect(before.naturalWidth, before.naturalHeight);
  };
  before.src = url;
  elements["result-image"].hidden = true;
  elements["result-image"].removeAttribute("src");
  elements["divider"].hidden = true;
  elements["after-tag"].hidden = true;
  elements["compare-slider"].disabled = true;
  elements["download-link"].hidden = true;
  elements["viewer"].hidden = false;
  setZoom(1);
}

function setStageAspect(width, height) {
  elements["stage"].style.aspectRatio = `${width} / ${height}`;
}

function setZoom(zoom) {
  elements["zoom"].value = String(zoom);
  elements["zoom-label"].textContent = `${Math.round(zoom * 100)}%`;
  elements["stage"].style.width = `${zoom * 100}%`;
}

function setSplit(percent) {
  const clamped = Math.min(100, Math.max(0, percent));
  elements["compare-slider"].value = String(clamped);
  elements["stage"].style.setProperty("--split", `${clamped}%`);
}

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function submit() {
  const form = new FormData();
  form.append("image", state.file, state.file.name);
  form.append("model", elements["model-select"].value);
  const outscale = elements["scale-select"].value;
  if (outscale) form.append("outscale", outscale);

  for (;;) {
    setState("uploading", "Uploading…");
    const response = await fetch("/api/upscale", { method: "POST", body: form });
    if (response.status === 503) {
      const seconds = Number(response.headers.get("Retry-After")) || 5;
      setState("busy", `The server is busy; trying again in ${seconds} s…`);
      await wait(seconds * 1000);
      continue;
    }
    if (!response.ok) throw new Error(await errorMessage(response));
    return response.json();
  }
}

async function followJob(job) {
  for (;;) {
    elements["progress"].value = job.progress;
    if (job.status === "done") return job;
    if (job.status === "failed") throw new Error(job.error || "the job failed");
    if (job.status === "queued") {
      setState("queued", `Waiting in line (position ${job.queue_position})…`);
    } else {
      setState("running", `Upscaling… ${Math.round(job.progress * 100)}%`);
    }
    await wait(POLL_INTERVAL_MS);
    const response = await fetch(`/api/jobs/${job.id}`);
    if (!response.ok) throw new Error(await errorMessage(response));
    job = await response.json();
  }
}

function showResult(job) {
  const result = elements["result-image"];
  return new Promise((resolve, reject) => {
    result.onload = () => {
      result.hidden = false;
      elements["divider"].hidden = false;
      elements["after-tag"].hidden = false;
      elements["compare-slider"].disabled = false;
      setSplit(50);
      setStageAspect(result.naturalWidth, result.naturalHeight);
      const before = elements["before-image"];
      elements["sizes"].textContent =
        `${before.naturalWidth} × ${before.naturalHeight} → ${result.naturalWidth} × ${result.naturalHeight}`;
      const link = elements["download-link"];
      link.href = job.result_url;
      link.download = ""; // the server names the file: <original stem>_<model>_x<scale>.png
      link.hidden = false;
      resolve();
    };
    result.onerror = () => reject(new Error("the result image could not be loaded"));
    result.src = job.result_url;
  });
}

async function upscale() {
  if (!state.file || state.busy) return;
  state.busy = true;
  elements["upscale-button"].disabled = true;
  // A Download left from an earlier run would offer the old result while this one is not ready.
  elements["download-link"].hidden = true;
  elements["download-link"].removeAttribute("href");
  elements["progress"].value = 0;
  try {
    const job = await followJob(await submit());
    await showResult(job);
    setState("done", `Done: ${job.input_size.join(" × ")} → ${job.output_size.join(" × ")} with ${job.model}.`);
  } catch (error) {
    setState("error", `Error: ${error.message}`);
  } finally {
    state.busy = false;
    elements["upscale-button"].disabled = !state.file;
  }
}

function splitFromPointer(event) {
  const box = elements["stage"].getBoundingClientRect();
  setSplit(((event.clientX - box.left) / box.width) * 100);
}

function wireEvents() {
  elements["file-input"].addEventListener("change", () => chooseFile(elements["file-input"].files[0]));
  const dropzone = elements["dropzone"];
  dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropzone.classList.add("dragging");
  });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("dragging"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("dragging");
    chooseFile(event.dataTransfer.files[0]);
  });
  elements["model-select"].addEventListener("change", updateScaleLabel);
  elements["upscale-button"].addEventListener("click", upscale);
  elements["zoom"].addEventListener("input", () => setZoom(Number(elements["zoom"].value)));
  elements["pixelated"].addEventListener("change", () =>
    elements["stage"].classList.toggle("pixelated", elements["pixelated"].checked));
  elements["compare-slider"].addEventListener("input", () => setSplit(Number(elements["compare-slider"].value)));

  // Dragging across the image moves the divider; the viewport's scrollbars pan when zoomed in.
  const stage = elements["stage"];
  stage.addEventListener("pointerdown", (event) => {
    if (elements["result-image"].hidden) return;
    stage.setPointerCapture(event.pointerId);
    splitFromPointer(event);
  });
  stage.addEventListener("pointermove", (event) => {
    if (stage.hasPointerCapture(event.pointerId)) splitFromPointer(event);
  });
}

wireEvents();
setSplit(50);
loadModels()
  .then(() => {
    if (!state.file) setState("idle", "Choose or drop an image to start.");
  })
  .catch((error) => setState("error", `Cannot list the models: ${error.message}`));
