// The npm package's API under long and careless use, in headless Chromium: generations
// running at once on one engine, a hundred in a row with the buffer pool flat, calls
// after dispose() failing with an Error that says so, a failing server named with its
// status, a download cut midway that leaves nothing half-written in the cache, and
// maxBufferBytes standing in for a smaller adapter.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { open, expected, ROOT } from "./browser.mjs";

let browser;
before(async () => {
  browser = await open();
});
after(async () => {
  await browser?.close();
});

test("concurrent and repeated generations, then calls after dispose", async () => {
  const cases = expected("t5-tiny").cases;
  const page = await browser.context.newPage();
  await page.goto(`${browser.site.url}/web/index.html`);
  const outcome = await page.evaluate(async (texts) => {
    const { default: init, Engine } = await import("/pkg/seq2seq_gpu.js");
    await init();
    const engine = await Engine.load("/tests/fixtures/t5-tiny/", { cache: false });
    const run = async (text, maxNewTokens) => {
      const stream = engine.generate(text, { maxNewTokens });
      for await (const _ of stream);
      return Array.from(stream.ids);
    };
    const tokenized = texts.map((t) => Array.from(engine.tokenize(t)));
    const together = await Promise.all(texts.map((t) => run(t, 8)));
    const alone = [];
    for (const t of texts) alone.push(await run(t, 8));
    // Warm-up fills the pool; every later generation must reuse it (a leak of one buffer
    // per generation shows after the first). Few steps: each costs seconds on SwiftShader.
    let settled = 0;
    for (let i = 0; i < 30; i++) {
      await run(texts[i % texts.length], 2);
      if (i === 9) settled = engine.poolBytes;
    }
    const final = engine.poolBytes;
    engine.dispose();
    const errors = [];
    for (const call of [() => engine.generate("hi"), () => engine.adapter, () => engine.poolBytes, () => engine.tokenize("hi")]) {
      try {
        call();
        errors.push(null);
      } catch (e) {
        errors.push({ isError: e instanceof Error, message: e.message });
      }
    }
    return { tokenized, together, alone, settled, final, errors };
  }, cases.slice(0, 3).map((c) => c.text));
  cases.slice(0, 3).forEach((c, i) => {
    assert.deepEqual(outcome.tokenized[i], c.input_ids, `tokenize ${i}`);
    assert.deepEqual(outcome.together[i], c.greedy_ids.slice(0, 9), `concurrent ${i}`);
    assert.deepEqual(outcome.alone[i], outcome.together[i], `alone ${i}`);
  });
  assert.ok(outcome.settled > 0);
  assert.equal(outcome.final, outcome.settled, "the pool grew after warm-up");
  for (const error of outcome.errors) {
    assert.ok(error?.isError, "a call after dispose() must throw an Error");
    assert.match(error.message, /disposed/);
  }
  await page.close();
});

test("a server error fails the load with the URL and the HTTP status", async () => {
  // A server that answers every request with 503 (and lets the page's origin read it).
  const failing = createServer((req, res) => {
    res.writeHead(503, "Service Unavailable", { "access-control-allow-origin": "*" }).end("down");
  });
  await new Promise((done) => failing.listen(0, "127.0.0.1", done));
  const base = `http://127.0.0.1:${failing.address().port}/model/`;
  const page = await browser.context.newPage();
  await page.goto(`${browser.site.url}/web/index.html`);
  const error = await page.evaluate(async (base) => {
    const { default: init, Engine } = await import("/pkg/seq2seq_gpu.js");
    await init();
    try {
      await Engine.load(base, { cache: false });
      return null;
    } catch (e) {
      return { isError: e instanceof Error, message: e.message };
    }
  }, base);
  failing.close();
  assert.ok(error?.isError, "the load must reject with an Error");
  assert.equal(error.message, `${base}config.json: HTTP 503 Service Unavailable`);
  await page.close();
});

test("a download cut midway fails the load and leaves no cache entry for that file", async () => {
  // Serves t5-tiny, but model.safetensors stops after half of its announced length.
  const folder = join(ROOT, "tests", "fixtures", "t5-tiny");
  const cutting = createServer((req, res) => {
    const name = req.url.replace(/^\/model\//, "");
    let bytes;
    try {
      bytes = readFileSync(join(folder, name));
    } catch {
      res.writeHead(404, { "access-control-allow-origin": "*" }).end();
      return;
    }
    res.writeHead(200, { "access-control-allow-origin": "*", "content-length": bytes.length });
    if (name === "model.safetensors") {
      res.write(bytes.subarray(0, bytes.length >> 1), () => res.destroy());
    } else {
      res.end(bytes);
    }
  });
  await new Promise((done) => cutting.listen(0, "127.0.0.1", done));
  const base = `http://127.0.0.1:${cutting.address().port}/model/`;
  // The server's fresh port makes URLs no earlier test has cached.
  const page = await browser.context.newPage();
  // An unhandled rejection (of the cache's put) would show here.
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${browser.site.url}/web/index.html`);
  const outcome = await page.evaluate(async (base) => {
    const { default: init, Engine } = await import("/pkg/seq2seq_gpu.js");
    await init();
    let error = null;
    try {
      await Engine.load(base, { cache: true });
    } catch (e) {
      error = { isError: e instanceof Error, message: e.message };
    }
    const cache = await caches.open("seq2seq-gpu-models");
    return {
      error,
      config: Boolean(await cache.match(`${base}config.json`)),
      weights: Boolean(await cache.match(`${base}model.safetensors`)),
    };
  }, base);
  cutting.close();
  assert.ok(outcome.error?.isError, "the load must reject with an Error");
  assert.match(outcome.error.message, /model\.safetensors: could not fetch/);
  assert.ok(outcome.config, "files read whole are cached");
  assert.ok(!outcome.weights, "the cut file must not be cached");
  assert.deepEqual(pageErrors, []);
  await page.close();
});

test("maxBufferBytes acts as a smaller adapter: weights split into row blocks generate the same, a bad value is refused", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${browser.site.url}/web/index.html`);
  const outcome = await page.evaluate(async () => {
    const { default: init, Engine } = await import("/pkg/seq2seq_gpu.js");
    await init();
    const options = { maxNewTokens: 8, numBeams: 1 };
    const generate = async (maxBufferBytes) => {
      try {
        const engine = await Engine.load("/tests/fixtures/t5-tiny/", { cache: false, maxBufferBytes });
        const stream = engine.generate("Grant of Copyright License.", options);
        for await (const _ of stream);
        const ids = Array.from(stream.ids);
        engine.dispose();
        return ids;
      } catch (e) {
        return e instanceof Error ? e.message : `not an Error: ${e}`;
      }
    };
    return {
      unlimited: await generate(undefined),
      split: await generate(1 << 16),
      tooSmall: await generate(4096),
      odd: await generate(4095),
      big: await generate("big"),
    };
  });
  assert.ok(Array.isArray(outcome.unlimited), String(outcome.unlimited));
  assert.deepEqual(outcome.split, outcome.unlimited);
  assert.match(String(outcome.tooSmall), /maxStorageBufferBindingSize of this device is 4096, but a work buffer needs \d+/);
  assert.match(String(outcome.odd), /option maxBufferBytes must be a whole number of bytes from 4096 .*, found 4095$/);
  assert.match(String(outcome.big), /option maxBufferBytes must be .*, found "big"$/);
  await page.close();
});

test("generateMany yields each input as it ends, as generate gives it alone; a break stops it; bad options throw", async () => {
  const texts = expected("t5-tiny").cases.map((c) => c.text);
  const page = await browser.context.newPage();
  await page.goto(`${browser.site.url}/web/index.html`);
  const outcome = await page.evaluate(async (texts) => {
    const { default: init, Engine } = await import("/pkg/seq2seq_gpu.js");
    await init();
    const engine = await Engine.load("/tests/fixtures/t5-tiny/", { cache: false });
    // Different lengths, a blank line, more inputs than rows. Few steps: SwiftShader is slow.
    const inputs = [texts[0], "", `${texts[2]} ${texts[1]}`, texts[1], texts[3]];
    const options = { maxNewTokens: 3 };
    const alone = [];
    for (const text of inputs) {
      if (!text) {
        alone.push([]);
        continue;
      }
      const stream = engine.generate(text, options);
      for await (const _ of stream);
      alone.push(Array.from(stream.ids));
    }
    const stream = engine.generateMany(inputs, { ...options, batchSize: 2 });
    const results = [];
    for await (const result of stream) results.push({ index: result.index, ids: Array.from(result.ids), text: result.text });
    let firstOfBroken = null;
    for await (const result of engine.generateMany(inputs, { ...options, batchSize: 2 })) {
      firstOfBroken = result.index;
      break;
    }
    const errors = [];
    for (const bad of [{ batchSize: 0 }, { splitSentences: "yes" }, { nonsense: 1 }]) {
      try {
        engine.generateMany(inputs, bad);
        errors.push(null);
      } catch (e) {
        errors.push({ isError: e instanceof Error, message: e.message });
      }
    }
    engine.dispose();
    return { alone, results, batchSize: stream.batchSize, firstOfBroken, errors };
  }, texts);
  assert.equal(outcome.batchSize, 2);
  const byIndex = [...outcome.results].sort((a, b) => a.index - b.index);
  assert.deepEqual(byIndex.map((r) => r.index), [0, 1, 2, 3, 4]);
  byIndex.forEach((r, i) => assert.deepEqual(r.ids, outcome.alone[i], `input ${i}`));
  assert.equal(byIndex[1].text, "");
  assert.ok(outcome.firstOfBroken !== null);
  assert.match(outcome.errors[0]?.message ?? "", /batchSize must be a whole number/);
  assert.match(outcome.errors[1]?.message ?? "", /splitSentences must be true or false/);
  assert.match(outcome.errors[2]?.message ?? "", /unknown generate option "nonsense"/);
  for (const error of outcome.errors) assert.ok(error.isError);
  await page.close();
});
