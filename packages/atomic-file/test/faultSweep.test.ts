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

const operations: ReadonlyArray<Operation> = [
  {
    name: "writeFile over an existing file",
    before: Option.some("old"),
    after: Option.some(NEW),
    run: (atomic, target) => atomic.writeFile(target, encoder.encode(NEW)),
    committed: (error) => error._tag === "DirectorySyncFailure"
  },
  {
    name: "writeFile of a new file in new directories",
    before: Option.none(),
    after: Option.some(NEW),
    run: (atomic, target) => atomic.writeFileString(`${target}.d/a/b`, NEW),
    committed: (error) => error._tag === "DirectorySyncFailure"
  },
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

describe("a fault at every call, with every errno", () => {
  it.scoped("every operation keeps its documented state", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const faults = yield* FaultInjection
      const fs = yield* FileSystem.FileSystem
      const lock = yield* FileLock.FileLock
      yield* requireBuild
      const lockHolder = yield* makeLockProbe(spawnScript)
      let cases = 0
      const rows: Array<ReadonlyArray<string | number>> = []
      for (const operation of operations) {
        // the second target of "a new file in new directories"
        const targetOf = (dir: string) => operation.name.includes("new directories") ? `${dir}/t.d/a/b` : `${dir}/t`
        const prepare = Effect.gen(function*() {
          yield* faults.arm(undefined)
          const dir = yield* fs.makeTempDirectoryScoped({ prefix: "fault-sweep-" })
          if (Option.isSome(operation.before)) yield* fs.writeFileString(`${dir}/t`, operation.before.value)
          return dir
        })

        const dir = yield* prepare
        yield* faults.arm(undefined)
        yield* operation.run(atomic, `${dir}/t`)
        const steps = (yield* faults.calls).map(stepOf(dir))
        const calls = steps.length
        expect(yield* contentOf(targetOf(dir))).toEqual(operation.after)
        expect(calls, operation.name).toBeGreaterThan(3)

        for (let call = 1; call <= calls; call++) {
          for (const [errno, reason] of ERRNOS) {
            const dir = yield* prepare
            yield* faults.arm({ call, errno })
            let committedRemove = false
            const exit = yield* Effect.exit(operation.run(atomic, `${dir}/t`))
            const fired = yield* faults.fired
            yield* faults.arm(undefined)
            const label = `${operation.name}, call ${call}, ${errno}`
            expect(fired, label).toBe(1)
            expect(Exit.isFailure(exit), label).toBe(true)
            if (Exit.isFailure(exit)) {
              // a typed failure, never a defect
              const error = Option.getOrThrow(Cause.failureOption(exit.cause)) as {
                readonly _tag: string
                readonly reason?: { readonly _tag: string }
                readonly removed?: boolean
              }
              committedRemove = operation.name === "remove" && operation.committed(error)
              expect(error.reason?._tag, `${label}: ${error._tag}`).toBe(reason)
              const expected = operation.committed(error) ? operation.after : operation.before
              const target = operation.name.includes("new directories") && !operation.committed(error)
                ? `${dir}/t`
                : targetOf(dir)
              expect(yield* contentOf(target), `${label}: ${error._tag}`).toEqual(expected)
            }
            expect(yield* tempFilesUnder(dir), label).toEqual([])
            // the lock is free for another process, and for this one
            expect(yield* lockHolder(targetOf(dir)), label).toBe("free")
            yield* Effect.scoped(lock.acquire(targetOf(dir), { timeout: "1 second" }))
            // and the next operation succeeds (a removal that went through has nothing left to remove)
            if (!committedRemove) yield* operation.run(atomic, `${dir}/t`)
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
})
