// Builds the web page into dist/ (or the folder given): the script bundled and
// minified with esbuild, and the HTML as it is. `npm run build`; `make web`.
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { build } from "esbuild";

const out = process.argv[2] ?? "dist";
await mkdir(out, { recursive: true });
await build({
  entryPoints: ["src/app.js"],
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  outfile: join(out, "app.js"),
  logLevel: "warning",
});
await copyFile("src/index.html", join(out, "index.html"));
