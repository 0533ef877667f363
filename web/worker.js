// Runs the engine off the main thread, so the page never freezes while a model loads or
// generates. Messages in: load, generate, stop. Messages out: progress, loaded, piece,
// done, stopped, error.
import init, { Engine } from "../pkg/seq2seq_gpu.js";

const ready = init();
let engine = null;
let controller = null;

const post = (message) => self.postMessage(message);

async function load({ url, files, weights }) {
  const options = { onProgress: (p) => post({ type: "progress", ...p }), weights };
  engine?.dispose();
  engine = null;
  engine = files ? await Engine.loadFiles(files, options) : await Engine.load(url, options);
  post({ type: "loaded", adapter: engine.adapter, files: engine.loadedFiles, languages: engine.languages });
}

async function generate({ prompt, options }) {
  if (!engine) throw new Error("no model is loaded");
  controller = new AbortController();
  let tokens = 0;
  const started = performance.now();
  const stream = engine.generate(prompt, {
    ...options,
    signal: controller.signal,
    onToken: () => tokens++,
  });
  try {
    for await (const piece of stream) {
      post({ type: "piece", piece, tokens, ms: performance.now() - started });
    }
    post({
      type: "done",
      ids: stream.ids,
      text: stream.text,
      sequences: stream.sequences,
      tokens,
      ms: performance.now() - started,
    });
  } catch (error) {
    if (error.name === "AbortError") {
      post({ type: "stopped", tokens, ms: performance.now() - started });
    } else {
      throw error;
    }
  } finally {
    controller = null;
  }
}

self.onmessage = async ({ data }) => {
  if (data.type === "stop") {
    controller?.abort();
    return;
  }
  try {
    await ready;
    if (data.type === "load") await load(data);
    else if (data.type === "generate") await generate(data);
  } catch (error) {
    post({ type: "error", message: error?.message ?? String(error) });
  }
};
