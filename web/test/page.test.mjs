// The web page in headless Chromium on WebGPU (SwiftShader): fidelity with transformers for
// every family, streaming, Stop, errors, the Cache API, and a screenshot.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { open, autorun, expected, FAMILIES, ROOT } from "./browser.mjs";

let browser;
before(async () => {
  browser = await open();
});
after(async () => {
  await browser?.close();
});

const fixtureUrl = (family) => `/tests/fixtures/${family}/`;

test("greedy ids equal transformers' for every family", async () => {
  // The page runs each family's first case; the package, loaded once in that page, runs
  // the others (a page load per case would be slower), all to the fixture's full length.
  for (const family of FAMILIES) {
    const reference = expected(family);
    const [first, ...others] = reference.cases;
    const page = await autorun(browser.context, browser.site.url, {
      model: fixtureUrl(family),
      prompt: first.text,
      maxNewTokens: reference.max_new_tokens,
    });
    const state = await page.evaluate(() => document.body.dataset.state);
    const status = await page.locator("#status").textContent();
    assert.equal(state, "done", `${family}: ${status}`);
    const result = await page.evaluate(() => window.__result);
    assert.deepEqual(result.ids, first.greedy_ids, `${family}: ${first.text}`);
    assert.equal(result.text, first.greedy_text, family);
    assert.equal(await page.locator("#output").textContent(), first.greedy_text);
    const results = await page.evaluate(
      async ({ model, texts, maxNewTokens }) => {
        const { default: init, Engine } = await import("/pkg/seq2seq_gpu.js");
        await init();
        const engine = await Engine.load(model, { cache: false });
        const out = [];
        for (const text of texts) {
          const stream = engine.generate(text, { maxNewTokens });
          let streamed = "";
          for await (const piece of stream) streamed += piece;
          out.push({ ids: Array.from(stream.ids), text: stream.text, streamed });
        }
        engine.dispose();
        return out;
      },
      { model: fixtureUrl(family), texts: others.map((c) => c.text), maxNewTokens: reference.max_new_tokens },
    );
    others.forEach((testCase, i) => {
      assert.deepEqual(results[i].ids, testCase.greedy_ids, `${family}: ${testCase.text}`);
      assert.equal(results[i].text, testCase.greedy_text, `${family}: ${testCase.text}`);
      assert.equal(results[i].streamed, results[i].text, `${family}: streamed text`);
    });
    await page.close();
  }
});

test("text streams in several updates, and a screenshot shows the page", async () => {
  const reference = expected("t5-tiny");
  const testCase = reference.cases[2];
  const page = await browser.context.newPage();
  // Record every change of the output as it happens.
  await page.addInitScript(() => {
    window.__snapshots = [];
    new MutationObserver(() => {
      const out = document.getElementById("output");
      if (out) window.__snapshots.push(out.textContent);
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
  const query = new URLSearchParams({ model: fixtureUrl("t5-tiny"), prompt: testCase.text, max_new_tokens: "48", autorun: "1" });
  await page.goto(`${browser.site.url}/web/index.html?${query}`);
  await page.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 240_000 });
  const { updates, snapshots, result } = await page.evaluate(() => ({
    updates: window.__updates,
    snapshots: window.__snapshots,
    result: window.__result,
  }));
  assert.ok(updates >= 5, `only ${updates} streamed updates`);
  const partial = snapshots.filter((s) => s.length > 0 && s.length < result.text.length);
  assert.ok(partial.length >= 3, `only ${partial.length} partial texts were shown`);
  assert.match(await page.locator("#stats").textContent(), /tokens\/s/);
  const dir = join(ROOT, "web", "test-results");
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, "page.png"), fullPage: true });
  await page.close();
});

test("Stop cancels a generation and the engine generates again afterwards", async () => {
  // marian-tiny's third case never emits EOS, so a long limit keeps it busy.
  const reference = expected("marian-tiny");
  const long = reference.cases[2];
  const page = await browser.context.newPage();
  const query = new URLSearchParams({ model: fixtureUrl("marian-tiny"), prompt: long.text, max_new_tokens: "250" });
  await page.goto(`${browser.site.url}/web/index.html?${query}`);
  await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 120_000 });
  await page.click("#generate");
  await page.waitForFunction(() => window.__updates >= 2, null, { timeout: 120_000 });
  await page.click("#stop");
  await page.waitForFunction(() => document.body.dataset.state === "stopped", null, { timeout: 60_000 });
  assert.match(await page.locator("#stats").textContent(), /\(stopped\)/);
  const stoppedAt = (await page.locator("#output").textContent()).length;
  assert.ok(stoppedAt > 0);

  const short = reference.cases[0];
  await page.fill("#prompt", short.text);
  await page.fill("#max-new-tokens", String(reference.max_new_tokens));
  await page.click("#generate");
  await page.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 120_000 });
  assert.deepEqual((await page.evaluate(() => window.__result)).ids, short.greedy_ids);
  await page.close();
});

test("a bad model URL shows an error", async () => {
  const page = await autorun(browser.context, browser.site.url, {
    model: "/no/such/model/",
    prompt: "hello",
    maxNewTokens: 4,
  });
  assert.equal(await page.evaluate(() => document.body.dataset.state), "error");
  const status = await page.locator("#status").textContent();
  assert.match(status, /Error: .*\/no\/such\/model\/.*neither config\.json nor a bergamot config/);
  await page.close();
});

test("a second visit loads the model from the Cache API", async () => {
  // A fresh context, so the first visit starts with an empty cache.
  const fresh = await open();
  try {
    const family = "bart-tiny";
    const testCase = expected(family).cases[0];
    const weights = `/tests/fixtures/${family}/model.safetensors`;
    const options = { model: fixtureUrl(family), prompt: testCase.text, maxNewTokens: 48 };
    const first = await autorun(fresh.context, fresh.site.url, options);
    assert.equal(await first.evaluate(() => window.__loadedFromCache), false);
    assert.equal(fresh.site.requests.get(weights), 1);
    await first.close();

    const second = await autorun(fresh.context, fresh.site.url, options);
    assert.equal(await second.evaluate(() => document.body.dataset.state), "done");
    assert.equal(await second.evaluate(() => window.__loadedFromCache), true);
    assert.match(await second.locator("#progress-text").textContent(), /from cache/);
    assert.equal(fresh.site.requests.get(weights), 1, "the weights were downloaded again");
    assert.deepEqual((await second.evaluate(() => window.__result)).ids, testCase.greedy_ids);
    await second.close();
  } finally {
    await fresh.close();
  }
});

test("a local folder picked in the page loads and generates, with progress shown", async () => {
  const family = "mbart-tiny";
  const testCase = expected(family).cases[1];
  const page = await browser.context.newPage();
  await page.goto(`${browser.site.url}/web/index.html`);
  await page.check('input[name="source"][value="folder"]');
  await page.setInputFiles("#folder", join(ROOT, "tests", "fixtures", family));
  await page.click("#load");
  await page.waitForFunction(() => ["ready", "error"].includes(document.body.dataset.state), null, { timeout: 120_000 });
  assert.equal(await page.evaluate(() => document.body.dataset.state), "ready", await page.locator("#status").textContent());
  // Only the files the model uses are read and counted: the fixture folder also holds
  // expected.json and expected.safetensors.
  const used = ["config.json", "generation_config.json", "tokenizer.json", "model.safetensors"];
  const bytes = used.reduce((n, f) => n + statSync(join(ROOT, "tests", "fixtures", family, f)).size, 0);
  assert.equal(await page.locator("#progress-text").textContent(), `${(bytes / 1e6).toFixed(1)} MB`);
  assert.match(await page.locator("#adapter").textContent(), /GPU: /);
  await page.fill("#prompt", testCase.text);
  await page.click("#generate");
  await page.waitForFunction(() => document.body.dataset.state === "done", null, { timeout: 120_000 });
  assert.deepEqual((await page.evaluate(() => window.__result)).ids, testCase.greedy_ids);
  await page.close();
});

test("without WebGPU the page says so plainly", async () => {
  const page = await browser.context.newPage();
  await page.addInitScript(() => Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined }));
  await page.goto(`${browser.site.url}/web/index.html`);
  assert.equal(await page.evaluate(() => document.body.dataset.state), "error");
  assert.match(await page.locator("#status").textContent(), /WebGPU is not available/);
  await page.close();
});
