/**
 * The crash-consistency harness: runs a program on the crash simulator,
 * then, for every call boundary in order, enumerates the durable states a
 * power cut there could leave and runs the invariant on each. Stops at the
 * first crash point with a violating state, and reports the state there that
 * persisted the fewest pending changes: the shortest trace to a violation.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { AtomicFile } from "../AtomicFile.js"
import * as FileLock from "../FileLock.js"
import {
  type CrashedTree,
  type CrashModel,
  type CrashState,
  enumerate,
  fileSystemOf,
  fingerprint,
  makeJournal
} from "./crashSimulator.js"
import { fromFileSystem, HandlesService, withEmulatedLinkStat } from "./handles.js"
import * as memory from "./memoryFileSystem.js"

export type CrashEnvironment = AtomicFile | FileLock.FileLock | FileSystem.FileSystem | Path.Path

export interface CrashCheckOptions {
  /** Default `"posix"`. */
  readonly model?: CrashModel
  /** Runs first; what it leaves is durable before the first crash point. */
  readonly setup?: Effect.Effect<unknown, unknown, CrashEnvironment>
  /** Fail rather than enumerate more states at one crash point. Default 100,000. */
  readonly maxStatesPerCrashPoint?: number
  /**
   * Run the write path of `AtomicFile.layerNode`, which guesses the target
   * with an `lstat` (emulated here by `readLink` and `stat`) rather than
   * resolving it first, and runs `writeFile` as one chain of callbacks (the
   * direct replace, its calls made on the simulator). Default `false`: the
   * path of `AtomicFile.Default`.
   */
  readonly guessTargets?: boolean
}

export interface CrashCheckReport {
  readonly model: CrashModel
  /** FileSystem and File calls the program made */
  readonly calls: number
  /** distinct crash points (call boundaries where something changed) */
  readonly crashPoints: number
  /** durable states enumerated, over all crash points */
  readonly states: number
  /** distinct (tree, acknowledgements) pairs the invariant ran on */
  readonly checked: number
}

export interface CrashViolationFound {
  readonly message: string
  /** the calls completed before the crash */
  readonly trace: ReadonlyArray<string>
  /** the fate of each pending change in the violating state */
  readonly fates: ReadonlyArray<string>
  readonly tree: CrashedTree
  readonly report: CrashCheckReport
}

export class CrashStateLimit extends Error {
  constructor(readonly states: number, readonly limit: number, readonly calls: number) {
    super(
      `the crash point after ${calls} calls has ${states} durable states, more than the limit of ${limit}: ` +
        "shorten the program or raise maxStatesPerCrashPoint"
    )
  }
}

const messageOf = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") {
    const error = failure.value
    if (typeof error === "string") return error
    if (error instanceof Error) return error.message
    if (typeof error === "object" && error !== null && "message" in error) return String(error.message)
  }
  return Cause.pretty(cause)
}

/**
 * The whole stack over one FileSystem: AtomicFile, an in-memory FileLock,
 * Path; with `guessTargets`, AtomicFile's handles have an emulated `lstat`.
 */
export const layerOver = (fs: FileSystem.FileSystem, guessTargets = false): Layer.Layer<CrashEnvironment> =>
  Layer.provideMerge(
    guessTargets
      ? AtomicFile.DefaultWithoutDependencies.pipe(
        Layer.provide(Layer.succeed(HandlesService, withEmulatedLinkStat(fromFileSystem(fs), fs)))
      )
      : AtomicFile.DefaultWithoutDependencies,
    Layer.provideMerge(FileLock.layerMemory, Layer.merge(Layer.succeed(FileSystem.FileSystem, fs), Path.layer))
  )

export const check = <Ack, E, R extends CrashEnvironment>(
  program: (acknowledge: (value: Ack) => Effect.Effect<void>) => Effect.Effect<unknown, E, R>,
  invariant: (
    tree: CrashedTree,
    acknowledged: ReadonlyArray<Ack>
  ) => Effect.Effect<unknown, unknown, FileSystem.FileSystem | Path.Path>,
  options: CrashCheckOptions = {}
): Effect.Effect<
  { readonly _tag: "Consistent"; readonly report: CrashCheckReport } | {
    readonly _tag: "Violation"
    readonly found: CrashViolationFound
  },
  E,
  Exclude<R, CrashEnvironment>
> =>
  Effect.scoped(Effect.gen(function*() {
    const model = options.model ?? "posix"
    const limit = options.maxStatesPerCrashPoint ?? 100_000
    const journal = makeJournal()
    const acknowledged: Array<Ack> = []
    const context = yield* Layer.build(layerOver(memory.make({}, journal.observer), options.guessTargets))
    if (options.setup !== undefined) {
      yield* Effect.orDie(Effect.provide(options.setup, context))
    }
    journal.startRecording()
    const acknowledge = (value: Ack) =>
      Effect.sync(() => {
        acknowledged.push(value)
        journal.acknowledge()
      })
    yield* Effect.provide(program(acknowledge), context)

    let states = 0
    let checked = 0
    const verdicts = new Map<string, string | undefined>()
    const report = (crashPoints: number): CrashCheckReport => ({
      model,
      calls: journal.calls.length,
      crashPoints,
      states,
      checked
    })
    for (let p = 0; p < journal.points.length; p++) {
      const point = journal.points[p]
      if (point === undefined) continue
      const acks = acknowledged.slice(0, point.acknowledged)
      // distinct trees not judged yet, each with its shortest state
      const fresh = new Map<string, CrashState>()
      const seenHere = new Set<string>()
      const outcome = enumerate(journal, point, model, limit, (state) => {
        const key = `${point.acknowledged}\u0002${fingerprint(state.tree)}`
        seenHere.add(key)
        if (verdicts.has(key)) return true
        const known = fresh.get(key)
        if (known === undefined || state.persisted < known.persisted) fresh.set(key, state)
        return true
      })
      if ("tooMany" in outcome) {
        return yield* Effect.die(new CrashStateLimit(outcome.tooMany, limit, point.calls))
      }
      states += outcome.states
      for (const [key, state] of fresh) {
        checked++
        const exit = yield* Effect.exit(
          Effect.suspend(() => invariant(state.tree, acks)).pipe(
            Effect.provideService(FileSystem.FileSystem, fileSystemOf(state.tree)),
            Effect.provide(Path.layer)
          )
        )
        verdicts.set(key, Exit.isSuccess(exit) ? undefined : messageOf(exit.cause))
      }
      // the violating state of this crash point that persisted the least
      let worst: { state: CrashState; message: string } | undefined
      for (const key of seenHere) {
        const message = verdicts.get(key)
        if (message === undefined) continue
        const state = fresh.get(key)
        if (state !== undefined && (worst === undefined || state.persisted < worst.state.persisted)) {
          worst = { state, message }
        }
      }
      if (worst !== undefined) {
        return {
          _tag: "Violation" as const,
          found: {
            message: worst.message,
            trace: journal.calls.slice(0, point.calls),
            fates: worst.state.fates,
            tree: worst.state.tree,
            report: report(p + 1)
          }
        }
      }
    }
    return { _tag: "Consistent" as const, report: report(journal.points.length) }
  }))
