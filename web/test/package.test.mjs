// The npm package as a user gets it: packed, installed into a throwaway project, imported
// from that project's own page, and generating.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open, expected, ROOT } from "./browser.mjs";

test("the packed npm package installs into another project and generates", async () => {
  const project = mkdtempSync(join(tmpdir(), "seq2seq-consumer-"));
  const tarball = execFileSync("npm", ["pack", join(ROOT, "pkg"), "--pack-destination", project], { cwd: project })
    .toString()
    .trim()
    .split("\n")
    .pop();
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", join(project, tarball)], { cwd: project });
  const installed = JSON.parse(readFileSync(join(project, "node_modules", "seq2seq-gpu", "package.json"), "utf8"));
  assert.equal(installed.types, "./seq2seq_gpu.d.ts");
  const types = readFileSync(join(project, "node_modules", "seq2seq-gpu", "seq2seq_gpu.d.ts"), "utf8");
  assert.match(types, /interface GenerateOptions/);

  cpSync(join(ROOT, "tests", "fixtures", "flan-t5-tiny"), join(project, "model"), { recursive: true });
  const testCase = expected("flan-t5-tiny").cases[1];
  writeFileSync(
    join(project, "index.html"),
    `<!doctype html><script type="module">
      import init, { Engine } from "./node_modules/seq2seq-gpu/seq2seq_gpu.js";
      try {
        await init();
        const engine = await Engine.load(new URL("model/", location.href).href);
        const stream = engine.generate(${JSON.stringify(testCase.text)}, { maxNewTokens: 48 });
        const pieces = [];
        for await (const piece of stream) pieces.push(piece);
        window.__result = { ids: stream.ids, text: pieces.join("") };
        engine.dispose();
      } catch (e) {
        window.__result = { error: e.message };
      }
    </script>`,
  );
  const browser = await open(project);
  try {
    const page = await browser.context.newPage();
    await page.goto(`${browser.site.url}/index.html`);
    await page.waitForFunction(() => window.__result, null, { timeout: 240_000 });
    const result = await page.evaluate(() => window.__result);
    assert.equal(result.error, undefined, result.error);
    assert.deepEqual(result.ids, testCase.greedy_ids);
    assert.equal(result.text, testCase.greedy_text);
  } finally {
    await browser.close();
  }
});
