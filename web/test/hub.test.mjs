// Folders laid out as hub repos publish them, loaded by the page from a URL and by the npm
// package: mBART-50 (a SentencePiece model with language codes), OPUS-MT (Marian's two
// SentencePiece models, a PyTorch checkpoint), an old BART repo (vocab.json and
// merges.txt, a base-model checkpoint, generation defaults in config.json) and T5Gemma
// (rotary, grouped-query and sliding-window attention, soft caps) generate what
// transformers generates, and the page shows the files it found and the language fields.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { open, autorun, ROOT } from "./browser.mjs";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const FOLDERS = ["mbart50", "opus-mt-spm", "bart-legacy", "t5gemma"];

let browser;
before(async () => {
  browser = await open();
});
after(async () => {
  await browser?.close();
});

function reference(name) {
  return JSON.parse(readFileSync(join(ROOT, "tests", "fixtures", "hub", name, "expected.json"), "utf8"));
}

/** A sequence up to and including its first EOS after the start token. */
function trimmed(ids, eos) {
  const at = ids.slice(1).findIndex((t) => eos.includes(t));
  return at < 0 ? ids : ids.slice(0, at + 2);
}

const languages = (testCase) =>
  testCase.lang ? { srcLang: testCase.lang.src_lang, tgtLang: testCase.lang.tgt_lang } : {};

test("the page loads hub layouts, shows their files, and generates greedily as transformers", async () => {
  for (const name of FOLDERS) {
    const expected = reference(name);
    const testCase = expected.cases[0];
    const page = await autorun(browser.context, browser.site.url, {
      model: `/tests/fixtures/hub/${name}/`,
      prompt: testCase.text,
      maxNewTokens: 32,
      options: { numBeams: 1, doSample: false, ...languages(testCase) },
    });
    const status = await page.locator("#status").textContent();
    assert.equal(await page.evaluate(() => document.body.dataset.state), "done", `${name}: ${status}`);
    const result = await page.evaluate(() => window.__result);
    assert.deepEqual(trimmed(result.ids, expected.eos_token_ids), trimmed(testCase.greedy_ids, expected.eos_token_ids), name);
    assert.equal(result.text, testCase.greedy_text, name);
    const files = await page.locator("#files").textContent();
    // Weights aside, every file is read, but a SentencePiece model that tokenizer.json
    // supersedes (T5Gemma ships both, as transformers' fast tokenizer reads only the latter).
    const superseded = (f) => f === "tokenizer.model" && expected.files.includes("tokenizer.json");
    for (const file of expected.files.filter((f) => !f.endsWith(".safetensors") && !f.endsWith(".bin") && !superseded(f))) {
      assert.ok(files.includes(file), `${name}: ${file} is not among ${files}`);
    }
    assert.equal(await page.locator("#languages-fields").isVisible(), Boolean(testCase.lang), name);
    await page.close();
  }
});

test("the package generates each folder's defaults in its languages, and refuses unknown codes", async () => {
  const page = await browser.context.newPage();
  await page.goto(`${browser.site.url}/web/index.html`);
  const cases = FOLDERS.map((name) => ({ name, testCase: reference(name).cases[1] }));
  const outcome = await page.evaluate(async (cases) => {
    const { default: init, Engine } = await import("/pkg/seq2seq_gpu.js");
    await init();
    const results = [];
    for (const { name, testCase } of cases) {
      const engine = await Engine.load(`/tests/fixtures/hub/${name}/`, { cache: false });
      const options = testCase.lang ? { srcLang: testCase.lang.src_lang, tgtLang: testCase.lang.tgt_lang } : {};
      const stream = engine.generate(testCase.text, options);
      for await (const _ of stream);
      let refusal = null;
      try {
        engine.generate(testCase.text, { tgtLang: "xx_YY" });
      } catch (e) {
        refusal = e.message;
      }
      results.push({ ids: Array.from(stream.ids), text: stream.text, languages: engine.languages ?? null, refusal });
      engine.dispose();
    }
    return results;
  }, cases);
  cases.forEach(({ name, testCase }, i) => {
    const eos = reference(name).eos_token_ids;
    assert.deepEqual(trimmed(outcome[i].ids, eos), trimmed(testCase.default_ids, eos), `${name} default ids`);
    assert.equal(outcome[i].text, testCase.default_text, `${name} default text`);
    if (testCase.lang) {
      assert.ok(outcome[i].languages.includes(testCase.lang.tgt_lang), name);
      assert.match(outcome[i].refusal, /unknown language code "xx_YY".*pt_XX/);
    } else {
      assert.equal(outcome[i].languages, null, name);
      assert.match(outcome[i].refusal, /no language codes/);
    }
  });
  await page.close();
});
