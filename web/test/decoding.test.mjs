// Decoding options in the browser: beam search and processors as transformers does them,
// sampling that a seed makes identical to the native CLI, and clear errors for bad values.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { open, autorun, expected, ROOT } from "./browser.mjs";

let browser;
before(async () => {
  browser = await open();
});
after(async () => {
  await browser?.close();
});

async function run(family, prompt, maxNewTokens, options, weights) {
  const page = await autorun(browser.context, browser.site.url, {
    model: `/tests/fixtures/${family}/`,
    prompt,
    maxNewTokens,
    options,
    weights,
  });
  const state = await page.evaluate(() => document.body.dataset.state);
  const status = await page.locator("#status").textContent();
  const result = await page.evaluate(() => window.__result);
  await page.close();
  return { state, status, result };
}

test("beam search and processors match transformers in the browser", async () => {
  for (const family of ["t5-tiny", "m2m100-tiny"]) {
    const reference = expected(family);
    const testCase = reference.cases[1];
    const beam = await run(family, testCase.text, reference.max_new_tokens, { numBeams: 4, earlyStopping: true });
    assert.equal(beam.state, "done", beam.status);
    assert.deepEqual(beam.result.ids, testCase.beam4_ids, `${family} beam4`);

    const entry = reference.processors.find((e) => e.case === 1 && e.options.num_return_sequences === 2);
    const camel = (key) => key.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
    const options = Object.fromEntries(Object.entries(entry.options).map(([k, v]) => [camel(k), v]));
    const returned = await run(family, testCase.text, 32, options);
    assert.deepEqual(returned.result.sequences, entry.sequences, `${family} ${JSON.stringify(entry.options)}`);
  }
});

test("a seed samples the same ids in the browser as natively", async () => {
  const cli = join(ROOT, "target", "debug", "seq2seq-gpu");
  assert.ok(existsSync(cli), "cargo test builds the CLI first");
  const family = "marian-tiny";
  const prompt = expected(family).cases[0].text;
  const native = JSON.parse(
    execFileSync(cli, [
      "--model", join(ROOT, "tests", "fixtures", family), "--json", "--max-new-tokens", "40",
      "--do-sample", "true", "--seed", "1234", "--temperature", "1.3", "--top-k", "20", "--top-p", "0.9", prompt,
    ], { stdio: ["ignore", "pipe", "ignore"] }).toString(),
  );
  const page = await run(family, prompt, 40, { doSample: true, seed: 1234, temperature: 1.3, topK: 20, topP: 0.9 });
  assert.equal(page.state, "done", page.status);
  assert.deepEqual(page.result.ids, native.ids);
  assert.equal(page.result.text, native.text);
});

test("f16 weights generate in the browser what they generate natively", async () => {
  const cli = join(ROOT, "target", "debug", "seq2seq-gpu");
  for (const family of ["flan-t5-tiny", "bart-tiny"]) {
    const prompt = expected(family).cases[0].text;
    const native = JSON.parse(
      execFileSync(cli, [
        "--model", join(ROOT, "tests", "fixtures", family), "--json", "--max-new-tokens", "48", "--weights", "f16", prompt,
      ], { stdio: ["ignore", "pipe", "ignore"] }).toString(),
    );
    const page = await run(family, prompt, 48, undefined, "f16");
    assert.equal(page.state, "done", page.status);
    assert.deepEqual(page.result.ids, native.ids, family);
  }
});

test("bad option values are errors with a message", async () => {
  for (const [options, needle] of [
    [{ numBeams: 0 }, /num_beams/],
    [{ doSample: true, topP: 1.5 }, /top_p/],
    [{ doSample: true, temperature: -1 }, /temperature/],
    [{ maxNewTokenz: 3 }, /unknown generate option "maxNewTokenz"/],
  ]) {
    const outcome = await run("t5-tiny", "hello", 4, options);
    assert.equal(outcome.state, "error");
    assert.match(outcome.status, needle);
  }
});
