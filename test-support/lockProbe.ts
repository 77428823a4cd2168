/**
 * "The lock is released", checked from another process: a child that, for
 * each path it reads on stdin, tries to take that path's `FileLock` without
 * waiting, lets it go at once, and answers `free`, `held` (someone holds it)
 * or the error's tag. POSIX record locks belong to a process, so only another
 * process sees a lock that this one leaked (a descriptor left open); the
 * in-process FIFO of the lock is checked by the caller taking the lock
 * itself.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Child } from "./childProcess.js"

/** Runs from a package that depends on (or is) `@intent/atomic-file`. */
const script = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect, Layer, ManagedRuntime } from "effect"
  import { FileLock } from "@intent/atomic-file"
  import { createInterface } from "node:readline"
  const runtime = ManagedRuntime.make(FileLock.layer.pipe(Layer.provide(NodeContext.layer)))
  const probe = (path) =>
    Effect.flatMap(FileLock.FileLock, (lock) => lock.acquire(path, { timeout: 0 })).pipe(
      Effect.scoped,
      Effect.as("free"),
      Effect.catchAll((error) => Effect.succeed(error._tag === "LockTimeout" ? "held" : error._tag))
    )
  const lines = createInterface({ input: process.stdin })
  let queue = Promise.resolve()
  lines.on("line", (line) => {
    const [id, path] = [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)]
    queue = queue.then(() => runtime.runPromise(probe(path))).then((answer) => console.log(id + " " + answer))
  })
  lines.on("close", () => runtime.dispose())
  console.log("ready")
`

/**
 * Starts the probing child for the scope; the returned function answers
 * whether another process could take the lock of `path` right now.
 */
export const makeLockProbe = (
  spawnScript: (script: string) => Effect.Effect<Child, never, Scope.Scope>
): Effect.Effect<(path: string) => Effect.Effect<string>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const child = yield* spawnScript(script)
    yield* child.waitForLine((line) => line === "ready")
    let next = 0
    return (path: string) =>
      Effect.suspend(() => {
        const id = String(next++)
        const from = child.lines.length
        return Effect.zipRight(
          child.send(`${id} ${path}`),
          Effect.map(child.waitForLine((line) => line.startsWith(`${id} `), from), (line) => line.slice(id.length + 1))
        )
      })
  })
