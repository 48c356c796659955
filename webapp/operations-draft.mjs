// TEMPORARY, until the trusted-documents build step (issue 14 item 9) lands: writes
// static/app/operations.js, {Name: {id: "sha256:<hex of the document>", document}} for each
// webapp/operations/<Name>.graphql. That step replaces this file and its output.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = join(HERE, "../infrastructure/http/pages/static/app/operations.js");
const operations = {};
for (const file of readdirSync(join(HERE, "operations")).sort()) {
  if (!file.endsWith(".graphql")) continue;
  const document = readFileSync(join(HERE, "operations", file), "utf8").trim();
  const id = "sha256:" + createHash("sha256").update(document).digest("hex");
  operations[file.replace(/\.graphql$/, "")] = { id, document };
}
writeFileSync(
  OUT,
  "// Generated from webapp/operations/*.graphql by `make webapp`: do not edit.\n" +
    `export const OPERATIONS = ${JSON.stringify(operations, null, 2)};\n`,
);
