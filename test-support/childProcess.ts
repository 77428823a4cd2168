/**
 * Child processes for the tests that need more than one process, shared by
 * the packages' test suites: a child runs an ES module script that imports a
 * package's built `dist/` (so the tests build first) and talks back one line
 * at a time on stdout; the parent may write lines to its stdin.
 */
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
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

  /**
   * Starts `node` on `script` (an ES module's source; `DIST` in it is
   * replaced by the path of the package's `dist/index.js`) with `args` after
   * `--`. The child is killed when the scope closes, if still running.
   */
  const spawnScript = (script: string, args: ReadonlyArray<string> = []) =>
    Effect.acquireRelease(
      Effect.sync((): Child => {
        const source = script.replaceAll("DIST", JSON.stringify(distIndex))
        const child = spawn(process.execPath, ["--input-type=module", "-e", source, "--", ...args], {
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
          child.on("exit", (code, signal) => {
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

  return { packageRoot, distIndex, requireBuild, spawnScript }
}
