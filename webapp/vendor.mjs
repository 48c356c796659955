// `make webapp`, after `npm ci`: copies the app's libraries from node_modules (the exact
// versions of package-lock.json) to the folder the API serves, each with its sha384, and
// writes the page's import map with those hashes, so the served files need no network
// and the browser refuses any file that is not the one vendored. axe-core goes to the
// browser tests' folder the same way (the tests inject it; the app never loads it).
// Written here rather than taken from a bundler: no bundling is wanted, only a copy.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..");
const APP = join(ROOT, "infrastructure/http/pages/static/app");
const APP_URL = "/static/app/vendor/";

// The module each bare import of the app resolves to, by package and path in the package.
const IMPORTS = {
  preact: ["preact", "dist/preact.mjs"],
  "preact/hooks": ["preact", "hooks/dist/hooks.mjs"],
  htm: ["htm", "dist/htm.mjs"],
  "graphql-ws": ["graphql-ws", "dist/client.js"],
  // Its ESM build imports the bare "jwt-decode", which the import map resolves too.
  "oidc-client-ts": ["oidc-client-ts", "dist/esm/oidc-client-ts.js"],
  "jwt-decode": ["jwt-decode", "build/esm/index.js"],
};
const LICENSES = {
  preact: "LICENSE",
  htm: "LICENSE",
  "graphql-ws": "LICENSE.md",
  "oidc-client-ts": "LICENSE",
  "jwt-decode": "LICENSE",
};
const TEST_FILES = { "axe-core": ["axe.min.js", "LICENSE"] };

function version(name) {
  const manifest = JSON.parse(readFileSync(join(HERE, "node_modules", name, "package.json")));
  return manifest.version;
}

function sha384(path) {
  return "sha384-" + createHash("sha384").update(readFileSync(path)).digest("base64");
}

// A module's relative imports (bundlers split shared code into chunks such as
// graphql-ws's common-<hash>.js): they are vendored beside it.
function relativeImports(path) {
  const text = readFileSync(path, "utf8");
  const found = [...text.matchAll(/(?:from|import)\s*["'](\.{1,2}\/[^"']+)["']/g)];
  return found.map((match) => match[1]);
}

function vendor(target, name, files) {
  const folder = `${name}@${version(name)}`;
  const copied = {};
  const pending = [...files];
  while (pending.length) {
    const file = pending.shift();
    if (copied[`${folder}/${file}`]) continue;
    const source = join(HERE, "node_modules", name, file);
    const destination = join(target, folder, file);
    mkdirSync(dirname(destination), { recursive: true });
    copyFileSync(source, destination);
    copied[`${folder}/${file}`] = sha384(destination);
    if (/\.m?js$/.test(file)) {
      for (const relative of relativeImports(source)) {
        pending.push(posix.normalize(posix.join(posix.dirname(file), relative)));
      }
    }
  }
  return copied;
}

function writeList(target, list) {
  const sorted = Object.fromEntries(Object.entries(list).sort(([a], [b]) => a.localeCompare(b)));
  writeFileSync(join(target, "integrity.json"), JSON.stringify(sorted, null, 2) + "\n");
}

function importMap(list) {
  const imports = {};
  for (const [specifier, [name, file]] of Object.entries(IMPORTS)) {
    imports[specifier] = `${APP_URL}${name}@${version(name)}/${file}`;
  }
  const integrity = {};
  for (const [path, hash] of Object.entries(list)) {
    if (/\.m?js$/.test(path)) integrity[APP_URL + path] = hash;
  }
  return JSON.stringify({ imports, integrity }, null, 2);
}

function writeImportMap(list) {
  const page = join(APP, "index.html");
  const html = readFileSync(page, "utf8");
  const block = /(<script type="importmap">)[\s\S]*?(<\/script>)/;
  if (!block.test(html)) throw new Error(`${page}: no <script type="importmap"> to fill`);
  const map = importMap(list).replace(/^/gm, "    ").trimStart();
  writeFileSync(page, html.replace(block, `$1\n    ${map}\n    $2`));
}

const appTarget = join(APP, "vendor");
rmSync(appTarget, { recursive: true, force: true });
const appList = {};
const packages = new Set(Object.values(IMPORTS).map(([name]) => name));
for (const name of packages) {
  const files = Object.values(IMPORTS)
    .filter(([n]) => n === name)
    .map(([, file]) => file);
  Object.assign(appList, vendor(appTarget, name, [...files, LICENSES[name]]));
}
writeList(appTarget, appList);
writeImportMap(appList);

const testTarget = join(ROOT, "tests/browser/vendor");
rmSync(testTarget, { recursive: true, force: true });
const testList = {};
for (const [name, files] of Object.entries(TEST_FILES)) {
  Object.assign(testList, vendor(testTarget, name, files));
}
writeList(testTarget, testList);
console.log(`vendored ${Object.keys(appList).length} app files, ${Object.keys(testList).length} test files`);
