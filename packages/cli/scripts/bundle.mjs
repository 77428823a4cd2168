/**
 * Bundles the two commands (`dist/bin/*.js`, built by `tsc -b`) into
 * `dist/bundle/`, the package's `bin`. Loaded module by module, Effect and
 * its packages take about 2 s of CPU to start a command on the machines this
 * project targets; one bundle starts in a small fraction of that (see
 * README.md). The SQL drivers are imported only by `import`/`export`: they
 * stay in chunks of their own, loaded when those commands run. Native addons
 * (os-lock, better-sqlite3) and pg's optional native binding stay outside;
 * they are this package's own dependencies, so they resolve from here.
 */
import * as esbuild from "esbuild"
import { chmodSync, readdirSync, rmSync } from "node:fs"
import { fileURLToPath } from "node:url"

const packageRoot = fileURLToPath(new URL("..", import.meta.url))
const outdir = `${packageRoot}dist/bundle`

rmSync(outdir, { recursive: true, force: true })
await esbuild.build({
  entryPoints: ["atomic-write", "intent-sessions"].map((name) => `${packageRoot}dist/bin/${name}.js`),
  bundle: true,
  splitting: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outdir,
  chunkNames: "chunks/[name]-[hash]",
  sourcemap: "linked",
  logLevel: "warning",
  external: ["os-lock", "better-sqlite3", "pg-native"],
  // CommonJS dependencies inside an ES module bundle need a `require`
  banner: {
    js:
      "import { createRequire as __createRequire } from \"node:module\"; const require = __createRequire(import.meta.url);"
  }
})
for (const file of readdirSync(outdir)) {
  if (file.endsWith(".js")) chmodSync(`${outdir}/${file}`, 0o755)
}
