/**
 * Every call of every operation fails once, with each errno: each operation
 * is run once to count its FileSystem calls, then once per (call, errno)
 * with that call failing. After each: the error is a documented tagged error
 * whose reason matches the errno; the target is byte-identical to before (or,
 * for a failure after the rename, wholly the new content); no temporary file
 * is left; the lock is released (another process can take it at once, and so
 * can this one); the next operation succeeds.
 */
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { makeLockProbe } from "../../../test-support/lockProbe.js"
import { reportSection, table } from "../../../test-support/reliabilityReport.js"
import { AtomicFile } from "../src/AtomicFile.js"
import * as FileLock from "../src/FileLock.js"
import { fromFileSystem, HandlesService, withEmulatedLinkStat } from "../src/internal/handles.js"
import { FaultInjection, layerFaultInjection } from "../src/testing.js"
import { requireBuild, spawnScript } from "./childProcess.js"
import { tempFilesUnder } from "./support.js"

const ERRNOS = [
  ["ENOSPC", "DiskFull"],
  ["EIO", "IOError"],
  ["EACCES", "PermissionDenied"],
  ["EROFS", "ReadOnlyFileSystem"],
  ["EMFILE", "TooManyOpenFiles"]
] as const

const FRAGMENT = { area: "fault-injection", title: "1. Fault injection at every step" }

const Stack = Layer.provideMerge(
  AtomicFile.DefaultWithoutDependencies,
  Layer.provideMerge(
    FileLock.layer,
    Layer.merge(layerFaultInjection.pipe(Layer.provide(NodeFileSystem.layer)), NodePath.layer)
  )
)

/**
 * The same, with `AtomicFile.layerNode`'s write path: its writeFile runs as
 * one chain of callbacks (`directReplace`), here over the faulty FileSystem,
 * with `lstat` made of `readLink` and `stat`.
 */
const DirectStack = Layer.provideMerge(
  AtomicFile.DefaultWithoutDependencies.pipe(
    Layer.provide(
      Layer.effect(
        HandlesService,
        Effect.map(FileSystem.FileSystem, (fs) => withEmulatedLinkStat(fromFileSystem(fs), fs))
      )
    )
  ),
  Layer.provideMerge(
    FileLock.layer,
    Layer.merge(layerFaultInjection.pipe(Layer.provide(NodeFileSystem.layer)), NodePath.layer)
  )
)

const encoder = new TextEncoder()
const NEW = "new content"

/** A recorded call (`method path`) as a step: the method and the role of the path. */
const stepOf = (dir: string) => (call: string) => {
  const [method = "", ...rest] = call.split(" ")
  const file = rest.join(" ")
  const role = file.endsWith("#atomic-tmp")
    ? "temp"
    : file.endsWith(".lock")
    ? "lock file"
    : file === dir
    ? "directory"
    : file.startsWith(`${dir}/`)
    ? file.slice(dir.length + 1)
    : file
  return `${method} ${role}`
}

/** The file's content, `None` when it does not exist. */
const contentOf = (file: string) =>
  Effect.flatMap(
    FileSystem.FileSystem,
    (fs) => fs.readFileString(file).pipe(Effect.map(Option.some), Effect.orElseSucceed(() => Option.none<string>()))
  )

interface Operation {
  readonly name: string
  /** the target's content before, `None` for no file */
  readonly before: Option.Option<string>
  /** the target's content after a success */
  readonly after: Option.Option<string>
  readonly run: (atomic: AtomicFile, target: string) => Effect.Effect<unknown, unknown>
  /** errors after which the change is already visible */
  readonly committed: (error: { readonly _tag: string; readonly removed?: boolean }) => boolean
}

const writeOver: Operation = {
  name: "writeFile over an existing file",
  before: Option.some("old"),
  after: Option.some(NEW),
  run: (atomic, target) => atomic.writeFile(target, encoder.encode(NEW)),
  committed: (error) => error._tag === "DirectorySyncFailure"
}

const writeNew: Operation = {
  name: "writeFile of a new file in new directories",
  before: Option.none(),
  after: Option.some(NEW),
  run: (atomic, target) => atomic.writeFileString(`${target}.d/a/b`, NEW),
  committed: (error) => error._tag === "DirectorySyncFailure"
}

const operations: ReadonlyArray<Operation> = [
  writeOver,
  writeNew,
  {
    name: "writeStream",
    before: Option.some("old"),
    after: Option.some(NEW),
    run: (atomic, target) => atomic.writeStream(target, Stream.make(encoder.encode("new "), encoder.encode("content"))),
    committed: (error) => error._tag === "DirectorySyncFailure"
  },
  {
    name: "update",
    before: Option.some("old"),
    after: Option.some(NEW),
    run: (atomic, target) => atomic.update(target, () => Effect.succeed(encoder.encode(NEW))),
    committed: (error) => error._tag === "DirectorySyncFailure"
  },
  {
    name: "append",
    before: Option.some("old"),
    after: Option.some(`old\n${NEW}\n`),
    run: (atomic, target) => atomic.append(target, NEW),
    committed: () => false
  },
  {
    name: "remove",
    before: Option.some("old"),
    after: Option.none(),
    run: (atomic, target) => atomic.remove(target),
    committed: (error) => error.removed === true
  }
]

/**
 * Runs `operation` once with its `call`-th call failing with `errno`, then
 * checks what it left: `"fails"`: a typed error with `reason`, the target as
 * before (or wholly new, for a failure after the commit); `"recovers"`: the
 * fault hit a call that only tries a shortcut, and the operation, having
 * taken the usual way, succeeded. Either way: no temporary file, the lock
 * free for another process and for this one, the next operation succeeds.
 */
const faultCase = (
  lockHolder: (path: string) => Effect.Effect<string, unknown>,
  operation: Operation,
  call: number,
  errno: string,
  reason: string,
  expected: "fails" | "recovers"
) =>
  Effect.gen(function*() {
    const atomic = yield* AtomicFile
    const faults = yield* FaultInjection
    const lock = yield* FileLock.FileLock
    const targetOf = (dir: string) => operation.name.includes("new directories") ? `${dir}/t.d/a/b` : `${dir}/t`
    const dir = yield* prepare(operation)
    yield* faults.arm({ call, errno })
    let committedRemove = false
    const exit = yield* Effect.exit(operation.run(atomic, `${dir}/t`))
    const fired = yield* faults.fired
    yield* faults.arm(undefined)
    const label = `${operation.name}, call ${call}, ${errno}`
    expect(fired, label).toBe(1)
    if (expected === "recovers") {
      expect(Exit.isSuccess(exit), `${label}: ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""}`).toBe(true)
      expect(yield* contentOf(targetOf(dir)), label).toEqual(operation.after)
    } else {
      expect(Exit.isFailure(exit), label).toBe(true)
    }
    if (Exit.isFailure(exit)) {
      // a typed failure, never a defect
      const error = Option.getOrThrow(Cause.failureOption(exit.cause)) as {
        readonly _tag: string
        readonly reason?: { readonly _tag: string }
        readonly removed?: boolean
      }
      committedRemove = operation.name === "remove" && operation.committed(error)
      expect(error.reason?._tag, `${label}: ${error._tag}`).toBe(reason)
      const expectedContent = operation.committed(error) ? operation.after : operation.before
      const target = operation.name.includes("new directories") && !operation.committed(error)
        ? `${dir}/t`
        : targetOf(dir)
      expect(yield* contentOf(target), `${label}: ${error._tag}`).toEqual(expectedContent)
    }
    expect(yield* tempFilesUnder(dir), label).toEqual([])
    // the lock is free for another process, and for this one
    expect(yield* lockHolder(targetOf(dir)), label).toBe("free")
    yield* Effect.scoped(lock.acquire(targetOf(dir), { timeout: "1 second" }))
    // and the next operation succeeds (a removal that went through has nothing left to remove)
    if (!committedRemove) yield* operation.run(atomic, `${dir}/t`)
  })

/** A scratch directory holding the operation's target as it is before. */
const prepare = (operation: Operation) =>
  Effect.gen(function*() {
    const faults = yield* FaultInjection
    const fs = yield* FileSystem.FileSystem
    yield* faults.arm(undefined)
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "fault-sweep-" })
    if (Option.isSome(operation.before)) yield* fs.writeFileString(`${dir}/t`, operation.before.value)
    return dir
  })

/** The operation's calls, without faults, as steps. */
const stepsOf = (operation: Operation) =>
  Effect.gen(function*() {
    const atomic = yield* AtomicFile
    const faults = yield* FaultInjection
    const dir = yield* prepare(operation)
    yield* faults.arm(undefined)
    yield* operation.run(atomic, `${dir}/t`)
    return (yield* faults.calls).map(stepOf(dir))
  })

describe("a fault at every call, with every errno", () => {
  it.scoped("every operation keeps its documented state", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      yield* requireBuild
      const lockHolder = yield* makeLockProbe(spawnScript)
      let cases = 0
      const rows: Array<ReadonlyArray<string | number>> = []
      for (const operation of operations) {
        const steps = yield* stepsOf(operation)
        const calls = steps.length
        expect(calls, operation.name).toBeGreaterThan(3)
        for (let call = 1; call <= calls; call++) {
          for (const [errno, reason] of ERRNOS) {
            yield* faultCase(lockHolder, operation, call, errno, reason, "fails")
            cases++
          }
        }
        rows.push([operation.name, calls, steps.join(", "), calls * ERRNOS.length])
      }
      console.info(`fault sweep: ${cases} (operation, call, errno) cases`)
      expect(cases).toBeGreaterThan(150)
      yield* reportSection(
        atomic,
        FRAGMENT,
        "1-atomic-file",
        `### AtomicFile (packages/atomic-file/test/faultSweep.test.ts)\n\n` +
          `Each operation failed at each of its FileSystem calls (steps) with each of ` +
          `${ERRNOS.map(([errno]) => errno).join(", ")}: **${cases} cases, all passed** ` +
          `(typed error and reason, target as before or wholly new, no temp file, lock free for another process ` +
          `and for this one, next operation succeeds).\n\n` +
          table(["operation", "steps", "the steps, in order", "cases"], rows)
      )
    }).pipe(Effect.provide(Stack)), 300_000)

  it.scoped(
    "layerNode's direct replace: a fault in its first calls is a shortcut not taken; any later one fails as above",
    () =>
      Effect.gen(function*() {
        const atomic = yield* AtomicFile
        yield* requireBuild
        const lockHolder = yield* makeLockProbe(spawnScript)
        let cases = 0
        let recovered = 0
        const rows: Array<ReadonlyArray<string | number>> = []
        // the direct attempt's calls: the target's lstat (readLink, and stat
        // when it is not a link) beside the temporary file's create
        const guesses: ReadonlyArray<readonly [Operation, ReadonlyArray<string>]> = [
          [writeOver, ["readLink t", "open temp", "stat t"]],
          [writeNew, ["readLink t.d/a/b", "open temp"]]
        ]
        for (const [operation, guess] of guesses) {
          const steps = yield* stepsOf(operation)
          expect(steps.slice(0, guess.length), operation.name).toEqual(guess)
          for (let call = 1; call <= steps.length; call++) {
            for (const [errno, reason] of ERRNOS) {
              const shortcut = call <= guess.length
              yield* faultCase(lockHolder, operation, call, errno, reason, shortcut ? "recovers" : "fails")
              cases++
              if (shortcut) recovered++
            }
          }
          rows.push([operation.name, steps.length, steps.join(", "), steps.length * ERRNOS.length])
        }
        console.info(`fault sweep (direct replace): ${cases} cases, ${recovered} in the shortcut`)
        yield* reportSection(
          atomic,
          FRAGMENT,
          "2-atomic-file-direct",
          `### AtomicFile.layerNode's direct replace (packages/atomic-file/test/faultSweep.test.ts)\n\n` +
            `writeFile on layerNode's write path (one chain of callbacks, here over the faulty FileSystem), failed ` +
            `the same way: **${cases} cases, all passed**. A fault in the direct attempt's first calls ` +
            `(${recovered} cases) makes it fall back, and the write succeeds the usual way; a fault in any later ` +
            `call fails the write as above.\n\n` +
            table(["operation", "steps", "the steps, in order", "cases"], rows)
        )
      }).pipe(Effect.provide(DirectStack)),
    300_000
  )
})
