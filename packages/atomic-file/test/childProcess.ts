/**
 * Child processes for the tests that need more than one process: they run an
 * ES module script that imports this package's built `dist/` (so `pnpm test`
 * builds first) and talk back one line at a time on stdout.
 */
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

export const packageRoot = fileURLToPath(new URL("..", import.meta.url))
export const distIndex = fileURLToPath(new URL("../dist/index.js", import.meta.url))

export const requireBuild = Effect.suspend(() =>
  existsSync(distIndex)
    ? Effect.void
    : Effect.dieMessage(`build the package first (pnpm build): ${distIndex} is missing`)
)

/** A running child: its process, and a way to wait for a line on stdout. */
export interface Child {
  readonly process: ChildProcess
  readonly lines: ReadonlyArray<string>
  readonly waitForLine: (predicate: (line: string) => boolean) => Effect.Effect<string>
  readonly exit: Effect.Effect<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/**
 * Starts `node` on `script` (an ES module's source; `DIST` in it is replaced
 * by the path of the package's `dist/index.js`) with `args` after `--`. The
 * child is killed when the scope closes, if still running.
 */
export const spawnScript = (script: string, args: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    Effect.sync((): Child => {
      const source = script.replaceAll("DIST", JSON.stringify(distIndex))
      const child = spawn(process.execPath, ["--input-type=module", "-e", source, "--", ...args], {
        cwd: packageRoot,
        stdio: ["ignore", "pipe", "inherit"]
      })
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
      const waitForLine = (predicate: (line: string) => boolean) =>
        Effect.async<string>((resume) => {
          const check = () => {
            const found = lines.find(predicate)
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
      return { process: child, lines, waitForLine, exit: Effect.promise(() => exited) }
    }),
    (child) =>
      Effect.sync(() => {
        if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL")
      })
  )

/** Kills the child with SIGKILL and waits until it is gone. */
export const kill = (child: Child) => Effect.zipRight(Effect.sync(() => child.process.kill("SIGKILL")), child.exit)
