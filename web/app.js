// The page: picks a model, shows download progress, streams generated text, reports
// tokens/s. The engine itself runs in worker.js.
//
// Automation contract (tests rely on it): with
//   index.html?model=<model folder URL>&prompt=<text>&max_new_tokens=<N>&autorun=1
// the page loads the model and runs one generation; then document.body.dataset.state is
// "done" (or "error") and window.__result is { ids, text }. An optional
// options=<JSON of generate options in camelCase> adds any other option (numBeams, seed...),
// and weights=f32|f16|int8 loads the weights in that format. Without model=, the bundled
// English-to-Portuguese model loads.

const $ = (id) => document.getElementById(id);
const BUNDLED = {
  enpt: new URL("../models/enpt/", location.href).href,
  pten: new URL("../models/pten/", location.href).href,
};

const worker = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
window.__updates = 0;
window.__result = null;

function setState(state, message = "") {
  document.body.dataset.state = state;
  $("status").textContent = message;
  const busy = state === "loading" || state === "generating";
  $("load").disabled = busy;
  $("generate").disabled = busy || !window.__loaded;
  $("stop").disabled = state !== "generating";
}

/** URLs and paths become absolute (the worker resolves against its own URL); a Hugging
 * Face id ("org/name", optionally "@revision") goes to the engine as it is. */
export function resolveModel(input) {
  const text = input.trim();
  if (/^(https?:)?\/\//.test(text) || text.startsWith("/") || text.startsWith(".")) {
    return new URL(text.endsWith("/") ? text : text + "/", location.href).href;
  }
  return text;
}

function loadModel(source) {
  window.__loaded = false;
  $("progress").hidden = false;
  $("progress").value = 0;
  $("progress-text").textContent = "";
  setState("loading", "Loading model…");
  worker.postMessage({ type: "load", ...source, weights: $("weights").value || undefined });
}

function generate() {
  $("output").textContent = "";
  $("stats").textContent = "";
  window.__result = null;
  setState("generating", "Generating…");
  const languages = {};
  if ($("src-lang").value.trim()) languages.srcLang = $("src-lang").value.trim();
  if ($("tgt-lang").value.trim()) languages.tgtLang = $("tgt-lang").value.trim();
  worker.postMessage({
    type: "generate",
    prompt: $("prompt").value,
    options: { ...languages, ...extraOptions, maxNewTokens: Number($("max-new-tokens").value) },
  });
}

/** The files the engine found, and the language fields of a multilingual model. */
function showModel({ files, languages }) {
  $("files").textContent = "Files: " + files.map((f) => f.file).join(", ");
  $("languages-fields").hidden = !languages;
  $("languages").replaceChildren(
    ...(languages ?? []).map((code) => Object.assign(document.createElement("option"), { value: code })),
  );
}

function stats({ tokens, ms }) {
  const rate = ms > 0 ? (tokens / (ms / 1000)).toFixed(1) : "–";
  return `${tokens} tokens in ${(ms / 1000).toFixed(2)} s (${rate} tokens/s)`;
}

const params = new URLSearchParams(location.search);
let autorun = params.get("autorun") === "1";
let extraOptions = {};

worker.onmessage = ({ data }) => {
  switch (data.type) {
    case "progress": {
      $("progress").max = data.total || 1;
      $("progress").value = data.loaded;
      const mb = (n) => (n / 1e6).toFixed(1);
      $("progress-text").textContent = `${data.file}: ${mb(data.loaded)} / ${mb(data.total)} MB`;
      break;
    }
    case "loaded": {
      window.__loaded = true;
      const cached = data.files.every((f) => f.fromCache);
      window.__loadedFromCache = cached;
      const bytes = data.files.reduce((n, f) => n + f.bytes, 0);
      $("progress").value = $("progress").max;
      $("progress-text").textContent = `${(bytes / 1e6).toFixed(1)} MB${cached ? " (from cache)" : ""}`;
      $("adapter").textContent = `GPU: ${data.adapter}`;
      showModel(data);
      setState("ready", "Model ready.");
      if (autorun) {
        autorun = false;
        generate();
      }
      break;
    }
    case "piece":
      window.__updates++;
      $("output").textContent += data.piece;
      $("stats").textContent = stats(data);
      break;
    case "done":
      window.__result = { ids: data.ids, text: data.text, sequences: data.sequences };
      $("stats").textContent = stats(data);
      setState("done", "Done.");
      break;
    case "stopped":
      $("stats").textContent = stats(data) + " (stopped)";
      setState("stopped", "Stopped.");
      break;
    case "error":
      setState("error", `Error: ${data.message}`);
      break;
  }
};
worker.onerror = (event) => setState("error", `Error: the worker failed (${event.message ?? "unknown"})`);

$("load").onclick = () => {
  const source = document.querySelector('input[name="source"]:checked').value;
  if (source in BUNDLED) loadModel({ url: BUNDLED[source] });
  else if (source === "url") {
    if (!$("model-url").value.trim()) return setState("error", "Error: enter a model URL or Hugging Face id.");
    loadModel({ url: resolveModel($("model-url").value) });
  } else {
    const files = [...$("folder").files];
    if (!files.length) return setState("error", "Error: pick a model folder (config.json, tokenizer.json and model.safetensors, or a Firefox Translations folder).");
    loadModel({ files });
  }
};
$("generate").onclick = generate;
$("stop").onclick = () => worker.postMessage({ type: "stop" });

if (!navigator.gpu) {
  setState("error", "Error: WebGPU is not available in this browser. Use a recent Chrome, Edge or Safari, or enable WebGPU.");
} else if (params.has("model") || autorun) {
  try {
    extraOptions = JSON.parse(params.get("options") ?? "{}");
  } catch {
    setState("error", "Error: the options parameter is not valid JSON.");
    throw new Error("bad options parameter");
  }
  if (params.has("prompt")) $("prompt").value = params.get("prompt");
  $("weights").value = params.get("weights") ?? "";
  if (params.has("max_new_tokens")) $("max-new-tokens").value = params.get("max_new_tokens");
  loadModel({ url: params.has("model") ? resolveModel(params.get("model")) : BUNDLED.enpt });
} else {
  setState("idle", "Pick a model and load it.");
}
