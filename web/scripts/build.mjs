// Builds the wasm package into ../pkg in wasm-pack's layout: the release wasm32 library,
// wasm-bindgen's ES module bindings and TypeScript types, and a package.json for npm.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pkg = join(root, "pkg");
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: "inherit" });

run("cargo", ["build", "--release", "--lib", "--target", "wasm32-unknown-unknown"]);
mkdirSync(pkg, { recursive: true });
run("wasm-bindgen", [
  "--target", "web",
  "--out-dir", pkg,
  "--out-name", "seq2seq_gpu",
  join(root, "target", "wasm32-unknown-unknown", "release", "seq2seq_gpu.wasm"),
]);

const cargo = readFileSync(join(root, "Cargo.toml"), "utf8");
const field = (name) => cargo.match(new RegExp(`^${name} = "(.*)"$`, "m"))[1];
const manifest = {
  name: field("name"),
  version: field("version"),
  description: field("description"),
  license: field("license"),
  type: "module",
  main: "./seq2seq_gpu.js",
  module: "./seq2seq_gpu.js",
  types: "./seq2seq_gpu.d.ts",
  exports: {
    ".": { types: "./seq2seq_gpu.d.ts", import: "./seq2seq_gpu.js", default: "./seq2seq_gpu.js" },
    "./seq2seq_gpu_bg.wasm": "./seq2seq_gpu_bg.wasm",
  },
  files: ["seq2seq_gpu.js", "seq2seq_gpu.d.ts", "seq2seq_gpu_bg.wasm", "seq2seq_gpu_bg.wasm.d.ts", "snippets/"],
  sideEffects: ["./snippets/*"],
  keywords: ["webgpu", "wgpu", "wasm", "t5", "bart", "marian", "translation", "transformers"],
};
writeFileSync(join(pkg, "package.json"), JSON.stringify(manifest, null, 2) + "\n");
writeFileSync(join(pkg, ".gitignore"), "*\n!.gitignore\n");
console.log(`built ${manifest.name}@${manifest.version} into pkg/`);
