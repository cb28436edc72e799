// Generates src/api/schema.d.ts from Lufy's OpenAPI document with openapi-typescript.
//   npm run api-types          regenerate (after changing an API)
//   npm run api-types:check    fail when the committed types differ from the document (CI)
// The document comes from the Python package (`python -m lufy.web.openapi_clients`, no database
// needed): LUFY_PYTHON, else the repository's .venv, else python3.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import openapiTS, { astToString } from "openapi-typescript";

const root = new URL("../../", import.meta.url).pathname;
const target = new URL("../src/api/schema.d.ts", import.meta.url).pathname;
const python = process.env.LUFY_PYTHON ?? (existsSync(`${root}.venv/bin/python`) ? `${root}.venv/bin/python` : "python3");

const json = execFileSync(python, ["-m", "lufy.web.openapi_clients"], {
  cwd: root,
  encoding: "utf8",
  maxBuffer: 64 * 1024 * 1024,
  stdio: ["ignore", "pipe", "inherit"],
});
const ast = await openapiTS(JSON.parse(json), { alphabetize: true });
const header =
  "// Generated from Lufy's OpenAPI document by openapi-typescript (npm run api-types).\n" +
  "// Do not edit: CI fails when this file and the document differ.\n\n";
const generated = header + astToString(ast);

if (process.argv.includes("--check")) {
  const committed = existsSync(target) ? readFileSync(target, "utf8") : "";
  if (committed !== generated) {
    console.error("src/api/schema.d.ts differs from the OpenAPI document: run `npm run api-types` in frontend/ and commit it");
    process.exit(1);
  }
  console.log("src/api/schema.d.ts matches the OpenAPI document");
} else {
  writeFileSync(target, generated);
  console.log(`wrote ${target}`);
}
