// Page side: seq2seq-gpu through its npm package API (pkg/seq2seq_gpu.js, built by
// `npm run build`) on one bundled model folder given by ?model= (e.g. /models/enpt/).
import init, { Engine } from "/pkg/seq2seq_gpu.js";

const modelBase = new URL(new URLSearchParams(location.search).get("model"), location.href).href;
let engine = null;

/** Instantiates the wasm and loads the model. Returns timings in ms and the adapter. */
export async function load() {
  const t0 = performance.now();
  await init();
  const t1 = performance.now();
  engine = await Engine.load(modelBase, { cache: false });
  const t2 = performance.now();
  return { load_ms: t2 - t0, breakdown_ms: { init_wasm: t1 - t0, engine_load: t2 - t1 }, adapter: engine.adapter };
}

/** Translates one sentence alone; returns { out, ms }. */
export async function translate(text) {
  const t = performance.now();
  const stream = engine.generate(text, {});
  for await (const _piece of stream);
  const out = stream.text;
  return { out, ms: performance.now() - t };
}

/** Translates `texts` as one document (generateMany) with `batchSize` rows batched as
 * `batching` says; returns { outs, ms }, the outputs in input order. */
export async function translateMany(texts, batchSize, batching) {
  const t = performance.now();
  const outs = new Array(texts.length);
  for await (const r of engine.generateMany(texts, { batchSize, batching })) outs[r.index] = r.text;
  return { outs, ms: performance.now() - t };
}

/** Each output's length in the model's tokens (EOS included): decode steps, for tokens/s. */
export function tokens(outputs) {
  return outputs.map((text) => engine.tokenize(text).length);
}

export function close() {
  engine?.dispose();
  engine = null;
}

window.bench = { load, translate, translateMany, tokens, close, info: () => ({ userAgent: navigator.userAgent, hardwareConcurrency: navigator.hardwareConcurrency, webgpu: "gpu" in navigator }) };
document.body.dataset.state = "ready";
