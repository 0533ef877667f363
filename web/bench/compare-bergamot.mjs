// Compares seq2seq-gpu with @browsermt/bergamot-translator (the wasm engine of Firefox
// Translations) on the bundled Firefox Translations models, in one headless Chromium.
//
//   npm ci && npm run build && npm run bench:bergamot      (in web/)
//   node bench/compare-bergamot.mjs [--directions enpt,pten] [--limit N] [--out FILE] [--document]
//   env: CHROMIUM (default /usr/bin/chromium)
//
// For each direction, three engines, each in its own page of the same browser and one after the
// other: bergamot-translator as shipped (its worker forces max-length-factor 2.0, as in Firefox),
// bergamot-translator with the models' own max-length-factor (2.5, from
// config.intgemm8bitalpha.yml, by serving a copy of its worker with that one value changed), and
// seq2seq-gpu through its npm package API (pkg/). Each translates one warm-up sentence (the
// first), then every sentence of tests/fixtures/bergamot/sentences.json one at a time. Timings
// are taken in the page (performance.now()). Tokens are counted by our engine's tokenizer on
// each engine's outputs (EOS included: one decode step per token), so tokens/s compares the
// same unit. Writes bench/results.json and prints a table.
//
// With --document, each direction's sentences are translated as one document instead: after a
// warm-up document (the first 8 sentences), bergamot-translator (as shipped) in one call, which
// batches them itself, and ours through generateMany at batch sizes 1, 8 and 32, in static and
// in continuous batches, beside ours one sentence at a time; sentences/s and tokens/s of each,
// written to bench/results-document.json.
import { createServer } from "node:http";
import { createReadStream, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join, normalize, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { cpus, loadavg } from "node:os";
import { chromium } from "playwright-core";

const HERE = dirname(fileURLToPath(import.meta.url));
const WEB = resolve(HERE, "..");
const ROOT = resolve(WEB, "..");

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args.splice(i, 2)[1];
};
const directions = opt("--directions", "enpt,pten").split(",");
const limit = Number(opt("--limit", "0")) || Infinity;
const documentMode = args.includes("--document");
if (documentMode) args.splice(args.indexOf("--document"), 1);
const outPath = resolve(opt("--out", join(HERE, documentMode ? "results-document.json" : "results.json")));
if (args.length) {
  console.error(`unknown arguments: ${args.join(" ")}`);
  process.exit(2);
}

// --- inputs ---------------------------------------------------------------------------------------
const sentences = JSON.parse(readFileSync(join(ROOT, "tests/fixtures/bergamot/sentences.json"), "utf8"));
const reference = JSON.parse(readFileSync(join(ROOT, "tests/fixtures/bergamot/reference.json"), "utf8"));
if (!existsSync(join(ROOT, "pkg/seq2seq_gpu.js"))) {
  console.error("pkg/seq2seq_gpu.js is missing: run `npm run build` in web/ first");
  process.exit(1);
}
const pkgDir = dirname(createRequire(join(WEB, "package.json")).resolve("@browsermt/bergamot-translator/package.json"));
const bergamotVersion = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).version;
const workerFile = join(pkgDir, "worker", "translator-worker.js");
const SHIPPED_FACTOR = "max-length-factor: 2.0";
if (!readFileSync(workerFile, "utf8").includes(SHIPPED_FACTOR))
  throw new Error(`${workerFile} no longer says "${SHIPPED_FACTOR}"`);
const ymlFactor = (dir) => {
  const m = readFileSync(join(ROOT, "models", dir, "config.intgemm8bitalpha.yml"), "utf8").match(/^max-length-factor:\s*([0-9.]+)/m);
  if (!m) throw new Error(`models/${dir}: no max-length-factor in the yml`);
  return m[1];
};

// --- static server --------------------------------------------------------------------------------
// /bergamot/           the npm package as shipped (from node_modules)
// /bergamot-mlf-<X>/   the same files, but worker/translator-worker.js says max-length-factor: X
// /                    the repository: pkg/, models/, web/bench/
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript", ".json": "application/json", ".wasm": "application/wasm", ".yml": "text/plain; charset=utf-8", ".css": "text/css" };
const inside = (root, file) => file === root || file.startsWith(root + sep);
const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  let root = ROOT, rest = path, factor = null, m;
  if (path.startsWith("/bergamot/")) [root, rest] = [pkgDir, path.slice("/bergamot/".length)];
  else if ((m = path.match(/^\/bergamot-mlf-([0-9.]+)\/(.*)$/))) [root, rest, factor] = [pkgDir, m[2], m[1]];
  let file = normalize(join(root, rest));
  if (!inside(resolve(root), file)) return res.writeHead(403).end();
  try {
    if (statSync(file).isDirectory()) file = join(file, "index.html");
    const headers = { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" };
    if (factor && file === workerFile) {
      const body = readFileSync(file, "utf8").replace(SHIPPED_FACTOR, `max-length-factor: ${factor}`);
      return res.writeHead(200, headers).end(body);
    }
    res.writeHead(200, { ...headers, "content-length": statSync(file).size });
    createReadStream(file).pipe(res);
  } catch {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found");
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const url = `http://127.0.0.1:${server.address().port}`;

// --- helpers --------------------------------------------------------------------------------------
const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b), h = v.length >> 1;
  return v.length % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
};
const r1 = (x) => Math.round(x * 10) / 10;
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
function agreement(a, b) {
  const same = a.filter((x, i) => x === b[i]).length;
  return { exact_match: same, compared: a.length, agreement: a.length ? same / a.length : null };
}

/** One engine on one direction in a fresh page; returns its record. */
async function runEngine(context, { key, name, page: pageFile, query, dir, texts, count = [] }) {
  const page = await context.newPage();
  const problems = [];
  // Our loader probes <model>/config.json before the bergamot files; that 404 is expected.
  const probe = (u) => /\/config\.json$/.test(u ?? "");
  page.on("console", (m) => { if (m.type() === "error" && !probe(m.location()?.url)) problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(e.message));
  page.on("response", (r) => { if (r.status() >= 400 && !(r.status() === 404 && probe(r.url()))) problems.push(`HTTP ${r.status()} ${r.url()}`); });
  try {
    await page.goto(`${url}/web/bench/${pageFile}?${new URLSearchParams(query)}`);
    await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 60_000 });
    const load = await page.evaluate(() => window.bench.load());
    const warm = await page.evaluate((t) => window.bench.translate(t), texts[0]);
    const outputs = [], ms = [];
    for (const [i, text] of texts.entries()) {
      const r = await page.evaluate((t) => window.bench.translate(t), text);
      outputs.push(r.out);
      ms.push(r.ms);
      if (process.stderr.isTTY) process.stderr.write(`\r${dir} ${key}: ${i + 1}/${texts.length} `);
    }
    if (process.stderr.isTTY) process.stderr.write("\n");
    const info = await page.evaluate(() => window.bench.info());
    // The page that has a tokenizer counts the tokens of its outputs and of `count`'s.
    const tokens = await page.evaluate((lists) => window.bench.tokens && lists.map((l) => window.bench.tokens(l)), [...count, outputs]);
    await page.evaluate(() => window.bench.close());
    const { load_ms, ...loadRest } = load;
    return {
      engine: name,
      outputs,
      ms_per_sentence: ms.map(r1),
      ms_per_sentence_median: r1(median(ms)),
      ms_total: r1(sum(ms)),
      load_ms: r1(load_ms),
      warmup_ms: r1(warm.ms),
      ...loadRest,
      ...(loadRest.breakdown_ms && { breakdown_ms: Object.fromEntries(Object.entries(loadRest.breakdown_ms).map(([k, v]) => [k, r1(v)])) }),
      page: info,
      ...(tokens && { token_counts: tokens }),
      ...(problems.length && { page_errors: problems }),
    };
  } catch (e) {
    throw new Error(`${dir} ${name}: ${e.message}${problems.length ? `\npage: ${problems.join("\n")}` : ""}`);
  } finally {
    await page.close();
  }
}

/** --document: one engine on one direction in a fresh page, the sentences as one document in
 * each of `ways` ({ label, batch, batching }: a batch size, or 0 for one sentence at a time). */
async function runDocument(context, { name, page: pageFile, query, texts, ways }) {
  const page = await context.newPage();
  try {
    await page.goto(`${url}/web/bench/${pageFile}?${new URLSearchParams(query)}`);
    await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 60_000 });
    const load = await page.evaluate(() => window.bench.load());
    const runs = {};
    for (const { label, batch, batching } of ways) {
      const document = (list) =>
        page.evaluate(async ([list, batch, batching]) => {
          if (batch) return window.bench.translateMany(list, batch, batching);
          const t = performance.now();
          const outs = [];
          for (const text of list) outs.push((await window.bench.translate(text)).out);
          return { outs, ms: performance.now() - t };
        }, [list, batch, batching]);
      await document(texts.slice(0, 8));
      const r = await document(texts);
      runs[label] = { outs: r.outs, ms: r1(r.ms) };
      console.error(`${name} ${label}: ${r1(r.ms)} ms`);
    }
    const outs = Object.values(runs).map((r) => r.outs);
    const counts = await page.evaluate((lists) => window.bench.tokens && lists.map((l) => window.bench.tokens(l)), outs);
    await page.evaluate(() => window.bench.close());
    return { engine: name, load_ms: r1(load.load_ms), adapter: load.adapter, runs, counts };
  } finally {
    await page.close();
  }
}

// --- run ------------------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless=new", "--no-sandbox", "--disable-gpu-sandbox", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--enable-unsafe-webgpu", "--enable-features=Vulkan",
    "--use-webgpu-adapter=swiftshader", "--enable-unsafe-swiftshader",
  ],
});
const results = {
  generated: new Date().toISOString(),
  browser: `Chromium ${browser.version()}`,
  bergamot_translator: bergamotVersion,
  host: { cpu: cpus()[0]?.model, cores: cpus().length, loadavg_at_start: loadavg().map(r1) },
  protocol: "per direction and engine: a fresh page; load; one warm-up translation (the first sentence); then each sentence alone, in order. ms measured in the page with performance.now(); medians are the mean of the two middle values for even counts.",
  directions: {},
};
try {
  const context = await browser.newContext();
  for (const dir of documentMode ? directions : []) {
    const texts = sentences[dir.slice(0, 2)].slice(0, limit);
    const refBySrc = new Map(reference[dir].map((r) => [r.src, r.out]));
    const model = `/models/${dir}/`;
    const bergamot = await runDocument(context, { name: `bergamot-translator ${bergamotVersion} (as shipped)`, page: "bergamot.html", query: { pkg: "/bergamot/", model }, texts, ways: [{ label: "one call", batch: texts.length }] });
    const ours = await runDocument(context, { name: "seq2seq-gpu (pkg/, WebGPU)", page: "ours.html", query: { model }, texts, ways: [{ label: "one at a time", batch: 0 }, ...[1, 8, 32].flatMap((b) => ["static", "continuous"].map((batching) => ({ label: `B = ${b}, ${batching}`, batch: b, batching })))] });
    // Our page's tokenizer counts bergamot's outputs too.
    const bergamotCounts = await (async () => {
      const page = await context.newPage();
      await page.goto(`${url}/web/bench/ours.html?${new URLSearchParams({ model })}`);
      await page.waitForFunction(() => document.body.dataset.state === "ready", null, { timeout: 60_000 });
      await page.evaluate(() => window.bench.load());
      const c = await page.evaluate((l) => window.bench.tokens(l), bergamot.runs["one call"].outs);
      await page.evaluate(() => window.bench.close());
      await page.close();
      return c;
    })();
    const rows = [];
    const add = (engine, label, run, counts) => {
      const tokens = sum(counts);
      rows.push({ engine, how: label, ms: run.ms, sentences_per_s: r1((1000 * texts.length) / run.ms), tokens_per_s: r1((1000 * tokens) / run.ms), tokens, reference: run.outs.filter((o, i) => o === refBySrc.get(texts[i])).length });
    };
    add(bergamot.engine, "one call", bergamot.runs["one call"], bergamotCounts);
    Object.entries(ours.runs).forEach(([label, run], i) => add(ours.engine, label, run, ours.counts[i]));
    results.directions[dir] = { sentences: texts.length, rows };
    results.adapter ??= ours.adapter;
  }
  for (const dir of documentMode ? [] : directions) {
    const lang = dir.slice(0, 2);
    const texts = sentences[lang].slice(0, limit);
    const refBySrc = new Map(reference[dir].map((r) => [r.src, r.out]));
    const refOut = texts.map((t) => refBySrc.get(t));
    if (refOut.some((x) => x === undefined)) throw new Error(`${dir}: reference.json lacks some sentences`);
    const factor = ymlFactor(dir);
    const model = `/models/${dir}/`;
    const engines = [
      { key: "bergamot", name: `bergamot-translator ${bergamotVersion} (as shipped, max-length-factor 2.0)`, page: "bergamot.html", query: { pkg: "/bergamot/", model }, max_length_factor: 2.0 },
      { key: `bergamot_mlf${factor}`, name: `bergamot-translator ${bergamotVersion} (worker patched: yml max-length-factor ${factor})`, page: "bergamot.html", query: { pkg: `/bergamot-mlf-${factor}/`, model }, max_length_factor: Number(factor) },
      { key: "ours", name: "seq2seq-gpu (pkg/, WebGPU)", page: "ours.html", query: { model } },
    ];
    const record = { sentences: texts.length, engines: {} };
    for (const e of engines) {
      const count = Object.values(record.engines).map((r) => r.outputs);
      const r = await runEngine(context, { ...e, dir, texts, count });
      if (e.max_length_factor !== undefined) r.max_length_factor = e.max_length_factor;
      r.reference = agreement(r.outputs, refOut);
      r.reference.diffs = texts.flatMap((src, i) => (r.outputs[i] === refOut[i] ? [] : [{ i, src, out: r.outputs[i], reference: refOut[i] }]));
      record.engines[e.key] = r;
      console.error(`${dir} ${e.key}: ${r.reference.exact_match}/${texts.length} = reference, median ${r.ms_per_sentence_median} ms, load ${r.load_ms} ms`);
    }
    const ours = record.engines.ours;
    // Our page counted every engine's tokens, in the order they ran.
    const counts = ours.token_counts;
    delete ours.token_counts;
    Object.values(record.engines).forEach((r, i) => {
      r.tokens_per_sentence = counts[i];
      r.tokens = sum(counts[i]);
      r.tokens_per_s = r1((1000 * r.tokens) / r.ms_total);
    });
    for (const e of engines.filter((e) => e.key !== "ours")) {
      const other = record.engines[e.key];
      const a = agreement(ours.outputs, other.outputs);
      a.diffs = texts.flatMap((src, i) => (ours.outputs[i] === other.outputs[i] ? [] : [{ i, src, ours: ours.outputs[i], [e.key]: other.outputs[i] }]));
      ours[`vs_${e.key}`] = a;
    }
    results.directions[dir] = record;
    results.adapter ??= ours.adapter;
  }
  results.host.loadavg_at_end = loadavg().map(r1);
} finally {
  await browser.close();
  server.close();
}

writeFileSync(outPath, JSON.stringify(results, null, 2) + "\n");
if (documentMode) {
  console.log(`${results.browser}; our adapter: ${results.adapter}`);
  for (const [dir, { sentences: n, rows }] of Object.entries(results.directions))
    for (const r of rows) console.log(`${dir}  ${r.engine.padEnd(42)} ${r.how.padEnd(14)} ${String(r.reference).padStart(3)}/${n} = ref  ${r.ms.toFixed(0).padStart(8)} ms  ${r.sentences_per_s.toFixed(1).padStart(7)} sentences/s  ${r.tokens_per_s.toFixed(1).padStart(8)} tokens/s`);
  process.exit(0);
}

// --- table ----------------------------------------------------------------------------------------
console.log(`${results.browser}; bergamot-translator ${bergamotVersion}; our adapter: ${results.adapter}`);
console.log(`host: ${results.host.cpu} x${results.host.cores}, load average ${results.host.loadavg_at_start.join(" ")} -> ${results.host.loadavg_at_end.join(" ")}`);
const rows = [["dir", "engine", "=ref", "=ours", "median ms", "total ms", "tokens", "tokens/s", "load ms", "warm-up ms"]];
for (const [dir, { sentences: n, engines }] of Object.entries(results.directions)) {
  for (const [key, r] of Object.entries(engines)) {
    const vsOurs = key === "ours" ? "-" : `${engines.ours[`vs_${key}`].exact_match}/${n}`;
    rows.push([dir, key, `${r.reference.exact_match}/${n}`, vsOurs, r.ms_per_sentence_median.toFixed(1), r.ms_total.toFixed(0), String(r.tokens), r.tokens_per_s.toFixed(1), r.load_ms.toFixed(0), r.warmup_ms.toFixed(0)]);
  }
}
const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
for (const row of rows) console.log(row.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  "));
console.log(`wrote ${relative(process.cwd(), outPath) || outPath}`);
