// Validates custom resources (a JSON array, from check_k8s.py) with the models @kubernetes-models generates
// from each operator's published CRDs. Prints one JSON line: the objects validated, the kinds without a
// validator here, and every error. Exits 1 on an error.
//
//   node check.mjs FILE
import fs from "node:fs";
import * as cnpg from "@kubernetes-models/cloudnative-pg/postgresql.cnpg.io/v1";
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";

const models = {
  "postgresql.cnpg.io/v1": cnpg,
  "keda.sh/v1alpha1": keda,
};
const objects = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
let validated = 0;
const noValidator = new Set();
const errors = [];
for (const object of objects) {
  const model = (models[object.apiVersion] || {})[object.kind];
  if (!model) {
    noValidator.add(`${object.apiVersion}/${object.kind}`);
    continue;
  }
  try {
    new model(object).validate();
    validated += 1;
  } catch (e) {
    errors.push(`${object.kind}/${object.metadata && object.metadata.name}: ${e.message}`);
  }
}
console.log(JSON.stringify({ validated, no_validator: [...noValidator].sort(), errors }));
process.exit(errors.length ? 1 : 0);
