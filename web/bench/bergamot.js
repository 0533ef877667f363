// Page side: @browsermt/bergamot-translator (the wasm engine Firefox Translations ships) on one
// bundled model folder. The package is served at the prefix given by ?pkg= (default /bergamot/:
// the package as shipped; compare-bergamot.mjs also serves a copy whose worker uses another
// max-length-factor). We reuse the package's TranslatorBacking only for its worker plumbing
// (loadWorker(): starts worker/translator-worker.js next to translator.js, instantiates the wasm,
// returns an RPC proxy) and skip its model registry: the worker's own loadTranslationModel() and
// translate() get the model files as ArrayBuffers from ?model= (e.g. /models/enpt/).
const query = new URLSearchParams(location.search);
const pkgBase = query.get("pkg") ?? "/bergamot/";
const modelBase = query.get("model");

/** The few keys of config.intgemm8bitalpha.yml we need (lists and scalars). */
function parseYaml(text) {
  const out = {};
  let key = null;
  for (const line of text.split("\n")) {
    let m;
    if ((m = line.match(/^\s*-\s+(.+?)\s*$/))) (out[key] = Array.isArray(out[key]) ? out[key] : []).push(m[1]);
    else if ((m = line.match(/^([A-Za-z0-9_][A-Za-z0-9_-]*):\s*(.*?)\s*$/))) { key = m[1]; out[key] = m[2]; }
  }
  return out;
}

async function fetchBuffer(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.arrayBuffer();
}

const pair = { from: "src", to: "trg" };
let worker = null; // { worker, exports }

/** Starts the worker (wasm) and loads the model. Returns timings in ms. */
export async function load() {
  const t0 = performance.now();
  const { TranslatorBacking } = await import(`${pkgBase}translator.js`);
  class LocalBacking extends TranslatorBacking {
    // The base constructor calls this at once; by default it fetches a registry from the network.
    async loadModelRegistery() { return []; }
  }
  const backing = new LocalBacking({ cacheSize: 0, useNativeIntGemm: false, pivotLanguage: null });
  worker = await backing.loadWorker();
  const t1 = performance.now();
  const yml = parseYaml(await (await fetch(`${modelBase}config.intgemm8bitalpha.yml`)).text());
  const vocabNames = [...new Set(yml.vocabs)];
  const [model, shortlist, ...vocabs] = await Promise.all([
    fetchBuffer(`${modelBase}${yml.models[0]}`),
    fetchBuffer(`${modelBase}${yml.shortlist[0]}`),
    ...vocabNames.map((v) => fetchBuffer(`${modelBase}${v}`)),
  ]);
  const t2 = performance.now();
  // Decoding options from the yml; the worker then overrides max-length-factor (2.0 as shipped),
  // max-length-break 128, mini-batch-words 1024, workspace 128, alignment soft.
  const config = {};
  for (const k of ["beam-size", "normalize", "word-penalty", "gemm-precision", "max-length-factor"])
    if (typeof yml[k] === "string") config[k] = yml[k];
  await worker.exports.loadTranslationModel(pair, { model, shortlist, vocabs, config });
  const t3 = performance.now();
  return { load_ms: t3 - t0, breakdown_ms: { worker_and_wasm: t1 - t0, fetch_files: t2 - t1, load_model: t3 - t2 }, config, files: { model: yml.models[0], shortlist: yml.shortlist[0], vocabs: vocabNames } };
}

/** Translates one sentence alone (one worker call); returns { out, ms }. */
export async function translate(text) {
  const t = performance.now();
  const [res] = await worker.exports.translate({ models: [pair], texts: [{ text, html: false, qualityScores: false }] });
  return { out: res.target.text, ms: performance.now() - t };
}

/** Translates `texts` as one document: one worker call, which batches them itself (its
 * mini-batch-words 1024); returns { outs, ms }. The batch size does not apply. */
export async function translateMany(texts) {
  const t = performance.now();
  const results = await worker.exports.translate({ models: [pair], texts: texts.map((text) => ({ text, html: false, qualityScores: false })) });
  return { outs: results.map((r) => r.target.text), ms: performance.now() - t };
}

export function close() {
  worker?.worker.terminate();
  worker = null;
}

window.bench = { load, translate, translateMany, close, info: () => ({ userAgent: navigator.userAgent, hardwareConcurrency: navigator.hardwareConcurrency }) };
document.body.dataset.state = "ready";
