/**
 * Kills a writer child with SIGKILL at random moments, again and again. A
 * writer prints `ready` once it has loaded everything, waits for `go <arg>`
 * on stdin, then writes in a loop, printing `ack ...` for each write it
 * acknowledges; it is killed at a random moment after its first. The next
 * writers are started while the current one runs, so their start-up (loading
 * Node and Effect) is not part of the window in which the kills land.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { type Child, kill } from "./childProcess.js"

export interface KillLoopOptions<E, R> {
  readonly kills: number
  /** starts a writer (in the scope it is given) */
  readonly spawn: Effect.Effect<Child, never, Scope.Scope>
  /** the argument of the `go` line of kill number `index` (0-based) */
  readonly go: (index: number) => string
  /** the kill comes after a uniformly random wait of 0 to this many milliseconds after the first `ack` line */
  readonly maxDelayMillis: number
  /** checks the files after kill number `index`; `child` holds every line the writer printed */
  readonly afterKill: (child: Child, index: number) => Effect.Effect<void, E, R>
}

/** Every writer still running when the caller's scope closes is killed then. */
export const killLoop = <E, R>(options: KillLoopOptions<E, R>): Effect.Effect<void, E, R | Scope.Scope> =>
  Effect.gen(function*() {
    const outer = yield* Effect.scope
    const start = Effect.gen(function*() {
      const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
      const child = yield* Scope.extend(options.spawn, scope)
      return { scope, child }
    })
    // two writers start while one runs: a start costs more than a run
    const waiting = [yield* start, yield* start]
    for (let index = 0; index < options.kills; index++) {
      const current = waiting.shift()
      if (current === undefined) return yield* Effect.dieMessage("no writer started")
      const { child, scope } = current
      yield* child.waitForLine((line) => line === "ready")
      yield* child.send(`go ${options.go(index)}`)
      if (index + waiting.length + 1 < options.kills) waiting.push(yield* start)
      // the random moment is counted from the first acknowledgement, so that
      // every kill lands in the write loop however slow the machine is
      yield* child.waitForLine((line) => line.startsWith("ack "))
      yield* Effect.sleep(Duration.millis(Math.random() * options.maxDelayMillis))
      const exit = yield* kill(child)
      if (exit.signal !== "SIGKILL") {
        return yield* Effect.dieMessage(
          `the writer ended by itself (${exit.code}): ${child.lines.slice(-3).join(" | ")}`
        )
      }
      yield* Effect.ensuring(options.afterKill(child, index), Scope.close(scope, Exit.void))
    }
  })
