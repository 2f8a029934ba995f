// Validates the custom resources of rendered manifests (YAML on stdin) against the schemas
// their projects publish, through the validators @kubernetes-models generates from them
// (installed, pinned, by `cargo xtask prereqs` under the npm directory given as the first
// argument). Core kinds are kubernetes-validate's job; a custom kind with no published
// schema here (sigstore's ClusterImagePolicy) is named, not passed silently.
//
//   kubectl kustomize DIR | node manifests/tests/validate-crds.mjs ~/.cache/bulwark-npm
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const npm = process.argv[2];
if (!npm) {
  console.error("usage: validate-crds.mjs NPM_DIR < rendered.yaml");
  process.exit(2);
}
const load = (spec) => import(pathToFileURL(join(npm, "node_modules", spec)).href);
const { parseAllDocuments } = await load("yaml/dist/index.js");

// apiVersion -> the package and folder holding its kinds.
const groups = {
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
  "gateway.networking.k8s.io/v1": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1",
  "cert-manager.io/v1": "@kubernetes-models/cert-manager/cert-manager.io/v1",
  "kyverno.io/v1": "@kubernetes-models/kyverno/kyverno.io/v1",
};
// Custom kinds with no installable published schema.
const unpublished = new Set(["policy.sigstore.dev/v1beta1 ClusterImagePolicy"]);

const docs = parseAllDocuments(readFileSync(0, "utf8"));
let checked = 0;
let failed = 0;
const skipped = new Set();
for (const doc of docs) {
  if (doc.errors.length > 0) {
    console.error(`not YAML: ${doc.errors[0].message}`);
    process.exit(1);
  }
  const obj = doc.toJS();
  if (!obj || typeof obj !== "object") continue;
  const { apiVersion, kind } = obj;
  const name = `${kind}/${obj.metadata?.name ?? "?"}`;
  if (unpublished.has(`${apiVersion} ${kind}`)) {
    skipped.add(`${apiVersion} ${kind}`);
    continue;
  }
  const folder = groups[apiVersion];
  if (!folder) {
    // Core groups have no dot (apps, batch, policy) or end in .k8s.io: kubernetes-validate's.
    const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
    if (group.includes(".") && !group.endsWith(".k8s.io")) {
      console.error(`${name}: no schema for ${apiVersion}`);
      failed++;
    }
    continue;
  }
  let Model;
  try {
    Model = (await load(`${folder}/${kind}.js`))[kind];
  } catch {
    console.error(`${name}: ${apiVersion} has no kind ${kind}`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    checked++;
  } catch (e) {
    console.error(`${name} (${apiVersion}): ${e.message}`);
    failed++;
  }
}
for (const s of skipped) console.error(`note: ${s} has no published schema to check against`);
if (failed > 0) process.exit(1);
console.log(`custom resources valid: ${checked}`);
