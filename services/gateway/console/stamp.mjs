// After `vite build`: record the hash of the sources the build came from (dist/SOURCE_HASH),
// so a test can tell a stale dist/ from a fresh one without Node.js.
import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

const ROOT = new URL(".", import.meta.url).pathname;
const INPUTS = ["index.html", "package.json", "package-lock.json", "vite.config.js", "src"];

function files(path) {
  if (statSync(path).isDirectory()) {
    return readdirSync(path).sort().flatMap((name) => files(join(path, name)));
  }
  return [path];
}

const hash = createHash("sha256");
for (const input of INPUTS) {
  const names = files(join(ROOT, input)).map((file) => relative(ROOT, file).split("\\").join("/"));
  for (const name of names.sort()) {
    const file = join(ROOT, name);
    hash.update(name);
    hash.update("\0");
    hash.update(readFileSync(file));
    hash.update("\0");
  }
}
writeFileSync(join(ROOT, "dist", "SOURCE_HASH"), hash.digest("hex") + "\n");
