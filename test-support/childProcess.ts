/**
 * Child processes for the tests that need more than one process, shared by
 * the packages' test suites: a child runs an ES module script that imports a
 * package's built `dist/` (so the tests build first) and talks back one line
 * at a time on stdout; the parent may write lines to its stdin.
 *
 * The script is bundled first (esbuild, the built `dist/` and its
 * dependencies into one file, once per script): such a child starts about
 * four times faster than one that loads every module of Effect separately.
 * Native addons (os-lock) stay outside the bundle.
 */
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** A running child: its process, its stdout lines so far, and ways to wait and talk. */
export interface Child {
  readonly process: ChildProcess
  /** every complete line the child printed so far (grows while it runs) */
  readonly lines: ReadonlyArray<string>
  /** the first line, printed at index `from` or later, that `predicate` accepts */
  readonly waitForLine: (predicate: (line: string) => boolean, from?: number) => Effect.Effect<string>
  /** writes one line to the child's stdin */
  readonly send: (line: string) => Effect.Effect<void>
  readonly exit: Effect.Effect<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Kills the child with SIGKILL and waits until it is gone. */
export const kill = (child: Child) => Effect.zipRight(Effect.sync(() => child.process.kill("SIGKILL")), child.exit)

/**
 * The child processes of one package: `packageUrl` is the URL of the
 * package's root directory (`new URL("..", import.meta.url)` from its
 * `test/`). Children run with that directory as their working directory, so
 * they resolve the package's own dependencies.
 */
export const childProcessesOf = (packageUrl: URL) => {
  const packageRoot = fileURLToPath(packageUrl)
  const distIndex = fileURLToPath(new URL("dist/index.js", packageUrl))

  const requireBuild = Effect.suspend(() =>
    existsSync(distIndex)
      ? Effect.void
      : Effect.dieMessage(`build the package first (pnpm build): ${distIndex} is missing`)
  )

  const bundles = new Map<string, Promise<string>>()
  /** The script bundled into one file under the package's `build/`, once per script. */
  const bundled = (source: string) =>
    Effect.promise(() => {
      const known = bundles.get(source)
      if (known !== undefined) return known
      const outfile = join(
        packageRoot,
        "build",
        "children",
        `${createHash("sha256").update(source).digest("hex").slice(0, 16)}.mjs`
      )
      const made = import("esbuild").then((esbuild) =>
        esbuild.build({
          stdin: { contents: source, resolveDir: packageRoot, loader: "js" },
          bundle: true,
          platform: "node",
          format: "esm",
          target: "node20",
          outfile,
          logLevel: "error",
          // CommonJS dependencies inside an ES module bundle need a `require`;
          // and the arguments start at argv[1], as with `node -e`
          banner: {
            js: "import { createRequire as __cr } from \"node:module\"; const require = __cr(import.meta.url); " +
              "process.argv.splice(1, 1);"
          },
          plugins: [{
            name: "native-addons-outside",
            setup: (build) => {
              build.onResolve({ filter: /^os-lock$/ }, (args) => ({
                path: createRequire(join(args.resolveDir, "index.js")).resolve(args.path),
                external: true
              }))
            }
          }]
        }).then(() => outfile)
      )
      bundles.set(source, made)
      return made
    })

  /**
   * Starts `node` on `script` (an ES module's source; `DIST` in it is
   * replaced by the path of the package's `dist/index.js`) with `args` after
   * `--`. The child is killed when the scope closes, if still running. The
   * child runs the script bundled (see above) unless `bundle` is false; with
   * `via`, node runs under that command.
   */
  const spawnScript = (
    script: string,
    args: ReadonlyArray<string> = [],
    options?: {
      /** false: node loads the script's modules one by one (default: bundled) */
      readonly bundle?: boolean
      /** a command that runs node, as `setpriv --reuid=65534` or `prlimit --nofile=64` */
      readonly via?: ReadonlyArray<string>
    }
  ) =>
    Effect.flatMap(
      options?.bundle !== false
        ? Effect.map(bundled(script.replaceAll("DIST", JSON.stringify(distIndex))), (file) => [file, ...args])
        : Effect.succeed([
          "--input-type=module",
          "-e",
          script.replaceAll("DIST", JSON.stringify(distIndex)),
          "--",
          ...args
        ]),
      (argv) => spawnArgv([...(options?.via ?? []), process.execPath, ...argv])
    )

  const spawnArgv = (argv: ReadonlyArray<string>) =>
    Effect.acquireRelease(
      Effect.sync((): Child => {
        const [command = process.execPath, ...rest] = argv
        const child = spawn(command, rest, {
          cwd: packageRoot,
          stdio: ["pipe", "pipe", "inherit"]
        })
        // a child killed while the parent writes to it must not kill the parent
        child.stdin?.on("error", () => {})
        const lines: Array<string> = []
        const waiters = new Set<() => void>()
        let buffer = ""
        child.stdout?.on("data", (data: Buffer) => {
          buffer += data.toString()
          const parts = buffer.split("\n")
          buffer = parts.pop() ?? ""
          lines.push(...parts)
          for (const waiter of waiters) waiter()
        })
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
          // "close", not "exit": every line the child printed has been read by then
          child.on("close", (code, signal) => {
            resolve({ code, signal })
            for (const waiter of waiters) waiter()
          })
        )
        const waitForLine = (predicate: (line: string) => boolean, from = 0) =>
          Effect.async<string>((resume) => {
            const check = () => {
              const found = lines.slice(from).find(predicate)
              if (found !== undefined) {
                waiters.delete(check)
                resume(Effect.succeed(found))
              } else if (child.exitCode !== null || child.signalCode !== null) {
                waiters.delete(check)
                resume(
                  Effect.dieMessage(`child exited before printing the expected line; it printed: ${lines.join(" | ")}`)
                )
              }
            }
            waiters.add(check)
            check()
            return Effect.sync(() => waiters.delete(check))
          })
        const send = (line: string) => Effect.sync(() => void child.stdin?.write(`${line}\n`))
        return { process: child, lines, waitForLine, send, exit: Effect.promise(() => exited) }
      }),
      (child) =>
        Effect.sync(() => {
          if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL")
        })
    )

  /**
   * The path of `script` bundled (`DIST` replaced as for `spawnScript`), for
   * tests that start node themselves: run it as `node <path> ...args`.
   */
  const bundleScript = (script: string): Effect.Effect<string> =>
    bundled(script.replaceAll("DIST", JSON.stringify(distIndex)))

  return { packageRoot, distIndex, requireBuild, spawnScript, bundleScript }
}
