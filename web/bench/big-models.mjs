// Streamed loading of real-shape models in headless Chromium (WebGPU on SwiftShader): the
// folders `bench --write-model` wrote under target/bench-models are loaded through the npm
// package's API with the Cache API on (the first load downloads into the cache), and the page
// reports load time, wasm memory (its peak: wasm memory never shrinks), the largest weight
// buffer and the ids of one greedy generation of four tokens.
//
//   node bench/big-models.mjs [--models nllb-600m,mt5-small] [--max-buffer-bytes N] [--weights f16]
//   (scripts/bench-big-models.sh writes the models and runs this after the native loads)
import { open } from "../test/browser.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args.splice(i, 2)[1];
};
const models = opt("--models", "nllb-600m,mt5-small").split(",");
const maxBufferBytes = Number(opt("--max-buffer-bytes", "0")) || undefined;
const weights = opt("--weights", undefined);
if (args.length) {
  console.error(`unknown arguments: ${args.join(" ")}`);
  process.exit(2);
}

const browser = await open();
try {
  for (const model of models) {
    const page = await browser.context.newPage();
    page.setDefaultTimeout(1_800_000);
    await page.goto(`${browser.site.url}/web/index.html`);
    const result = await page.evaluate(
      async ({ model, maxBufferBytes, weights }) => {
        const { default: init, Engine } = await import("/pkg/seq2seq_gpu.js");
        const wasm = await init();
        const started = performance.now();
        const engine = await Engine.load(`/target/bench-models/${model}/`, { cache: true, maxBufferBytes, weights });
        const loadMs = performance.now() - started;
        const wasmBytesAfterLoad = wasm.memory.buffer.byteLength;
        const t0 = performance.now();
        const stream = engine.generate("t10 t200 t3000 t40000 t123 t7", {
          maxNewTokens: 4,
          minNewTokens: 4,
          numBeams: 1,
        });
        for await (const _ of stream);
        return {
          model,
          adapter: engine.adapter,
          maxBufferBytes: maxBufferBytes ?? null,
          weights: weights ?? null,
          loadMs,
          wasmBytesAfterLoad,
          wasmBytes: wasm.memory.buffer.byteLength,
          largestBinding: engine.largestBinding,
          generateMs: performance.now() - t0,
          ids: Array.from(stream.ids),
          files: engine.loadedFiles,
        };
      },
      { model, maxBufferBytes, weights },
    );
    console.log(JSON.stringify(result));
    await page.close();
  }
} finally {
  await browser.close();
}
