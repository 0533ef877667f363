// Shared by the browser tests: Debian's Chromium with WebGPU on SwiftShader, driven by
// playwright-core (which never downloads a browser), and the project served on 127.0.0.1.
import { chromium } from "playwright-core";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "../scripts/serve.mjs";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const FAMILIES = ["t5-tiny", "flan-t5-tiny", "bart-tiny", "marian-tiny", "mbart-tiny", "m2m100-tiny"];

export function expected(family) {
  return JSON.parse(readFileSync(join(ROOT, "tests", "fixtures", family, "expected.json"), "utf8"));
}

const FLAGS = [
  "--no-sandbox",
  "--disable-gpu-sandbox",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-webgpu-adapter=swiftshader",
  "--enable-unsafe-swiftshader",
];

/** A browser context with a fresh profile, and a server for `root`. */
export async function open(root = ROOT) {
  const site = await serve(root);
  const profile = mkdtempSync(join(tmpdir(), "seq2seq-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless=new", ...FLAGS],
  });
  const logs = [];
  context.on("console", (m) => logs.push(m.text()));
  return {
    site,
    context,
    logs,
    async close() {
      await context.close();
      site.server.close();
    },
  };
}

/** Opens the page with the automation parameters and waits for the run to end. */
export async function autorun(context, url, { model, prompt, maxNewTokens, options, weights }) {
  const page = await context.newPage();
  const query = new URLSearchParams({ model, prompt, max_new_tokens: String(maxNewTokens), autorun: "1" });
  if (options) query.set("options", JSON.stringify(options));
  if (weights) query.set("weights", weights);
  await page.goto(`${url}/web/index.html?${query}`);
  await page.waitForFunction(() => ["done", "error"].includes(document.body.dataset.state), null, { timeout: 240_000 });
  return page;
}
