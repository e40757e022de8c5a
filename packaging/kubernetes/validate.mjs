// Schema validation of the example manifests (docs/kubernetes.md): each
// document is checked against the Kubernetes API's OpenAPI schema for its
// apiVersion and kind, as the kubernetes-models package (npm) carries it
// (ajv underneath), including unknown fields.  This is the schema check a
// client does; nothing here talks to a cluster.
//   NODE_PATH=DIR/node_modules node validate.mjs FILE.yaml...
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
const NM = process.env.NODE_PATH;
const require = createRequire(NM + "/");
const YAML = require("yaml");
const esm = async (p) => import(pathToFileURL(`${NM}/kubernetes-models/${p}/index.js`).href);
const core = await esm("v1");
const apps = await esm("apps/v1");
const models = {
  "v1/Pod": core.Pod,
  "v1/Secret": core.Secret,
  "apps/v1/Deployment": apps.Deployment,
};
let failed = 0, checked = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of YAML.parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      console.error(`${file}: YAML: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (!obj) continue;
    const key = `${obj.apiVersion}/${obj.kind}`;
    const model = models[key];
    if (!model) {
      console.error(`${file}: no schema here for ${key}`);
      failed++;
      continue;
    }
    const Model = model;
    try {
      new Model(obj).validate();
      checked++;
      console.log(`${file}: ${key} ${obj.metadata?.name}: valid`);
    } catch (e) {
      failed++;
      console.error(`${file}: ${key} ${obj.metadata?.name}: ${e.message}`);
      for (const d of e.errors || []) console.error(`  ${d.instancePath} ${d.message}`);
    }
  }
}
console.log(`${checked} valid, ${failed} invalid`);
process.exit(failed || !checked ? 1 : 0);
