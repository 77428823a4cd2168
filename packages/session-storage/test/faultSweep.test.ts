/**
 * SessionStorage.save, remove and compact with each of their FileSystem calls
 * failing once, with each errno: the error is a StorageFailure carrying that
 * errno, the sessions a fresh store reads are those of before (or, when the
 * change was already visible, of after), nothing is lost, no temporary file
 * is left, the store's lock is free (for another process, and for this one),
 * and the next call succeeds.
 */
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { AtomicFile, FileLock } from "@intent/atomic-file"
import { FaultInjection, layerFaultInjection } from "@intent/atomic-file/testing"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { makeLockProbe } from "../../../test-support/lockProbe.js"
import { reportSection, table } from "../../../test-support/reliabilityReport.js"
import { SessionStorage } from "../src/SessionStorage.js"
import * as Storage from "../src/SessionStorage.js"
import { requireBuild, spawnScript } from "./childProcess.js"
import { session } from "./support.js"

const ERRNOS = ["ENOSPC", "EIO", "EACCES", "EROFS", "EMFILE"] as const

const Platform = Layer.provideMerge(
  AtomicFile.AtomicFile.DefaultWithoutDependencies,
  Layer.provideMerge(
    FileLock.layer,
    Layer.merge(layerFaultInjection.pipe(Layer.provide(NodeFileSystem.layer)), NodePath.layer)
  )
)

/** The errno a StorageFailure carries, wherever its cause keeps it. */
const errnoOf = (error: unknown): string | undefined => {
  const cause = (error as { cause?: { reason?: { code?: string }; cause?: { code?: string } } }).cause
  return cause?.reason?.code ?? cause?.cause?.code
}

interface Operation {
  readonly name: string
  readonly run: (store: SessionStorage) => Effect.Effect<unknown, unknown>
  readonly after: ReadonlyArray<readonly [string, string]>
}

const before: ReadonlyArray<readonly [string, string]> = [["a", "1"], ["b", "1"], ["a", "2"]]
const liveBefore: ReadonlyArray<readonly [string, string]> = [["b", "1"], ["a", "2"]]

const operations: ReadonlyArray<Operation> = [
  { name: "save", run: (store) => store.save(session("c", "new")), after: [...liveBefore, ["c", "new"]] },
  { name: "remove", run: (store) => store.remove("b"), after: [["a", "2"]] },
  { name: "compact", run: (store) => store.compact(), after: liveBefore }
]

describe("SessionStorage with a fault at every call", () => {
  it.scoped("save, remove and compact lose nothing", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const faults = yield* FaultInjection
      const lock = yield* FileLock.FileLock
      const atomic = yield* AtomicFile.AtomicFile
      yield* requireBuild
      const lockHolder = yield* makeLockProbe(spawnScript)
      let cases = 0
      const rows: Array<ReadonlyArray<string | number>> = []
      for (const operation of operations) {
        for (const durability of ["full", "none"] as const) {
          const setup = Effect.gen(function*() {
            yield* faults.arm(undefined)
            const dir = yield* fs.makeTempDirectoryScoped({ prefix: "session-sweep-" })
            const file = `${dir}/sessions.jsonl`
            const store = yield* Effect.provide(
              SessionStorage,
              Layer.fresh(Storage.layerWithoutDependencies({ path: file, durability, compactThreshold: false }))
            )
            for (const [id, note] of before) yield* store.save(session(id, note))
            return { dir, file, store }
          })
          /** What a new store, as a new process would open, reads. */
          const observe = (file: string) =>
            Effect.gen(function*() {
              yield* faults.arm(undefined)
              const fresh = yield* Effect.provide(
                SessionStorage,
                Layer.fresh(Storage.layerWithoutDependencies({ path: file, compactThreshold: false }))
              )
              return (yield* fresh.list()).map((s) => [s.id, s.raw_notes] as const)
            })

          const first = yield* setup
          yield* faults.arm(undefined)
          yield* operation.run(first.store)
          const steps = (yield* faults.calls).map((call) => {
            const [method = "", ...rest] = call.split(" ")
            const path = rest.join(" ")
            const name = path === first.dir ? "directory" : path.split("/").pop() ?? ""
            return `${method} ${name.endsWith("#atomic-tmp") ? "temp" : name}`
          })
          const calls = steps.length
          expect(yield* observe(first.file)).toEqual(operation.after)

          for (let call = 1; call <= calls; call++) {
            for (const errno of ERRNOS) {
              const { dir, file, store } = yield* setup
              yield* faults.arm({ call, errno })
              const exit = yield* Effect.exit(operation.run(store))
              const fired = yield* faults.fired
              const label = `${operation.name} (${durability}), call ${call}, ${errno}`
              expect(fired, label).toBe(1)
              expect(Exit.isFailure(exit), label).toBe(true)
              if (Exit.isFailure(exit)) {
                const error = Option.getOrThrow(Cause.failureOption(exit.cause))
                expect((error as { _tag: string })._tag, label).toBe("StorageFailure")
                expect(errnoOf(error), label).toBe(errno)
              }
              const seen = yield* observe(file)
              // before, or (the change already visible) after: never anything else
              expect([JSON.stringify(liveBefore), JSON.stringify(operation.after)], label).toContain(
                JSON.stringify(seen)
              )
              const temps = (yield* fs.readDirectory(dir)).filter((name) => name.includes("#atomic-tmp"))
              expect(temps, label).toEqual([])
              expect(yield* lockHolder(file), label).toBe("free")
              yield* Effect.scoped(lock.acquire(file, { timeout: "1 second" }))
              // the next call, on the same store, succeeds
              if (JSON.stringify(seen) !== JSON.stringify(operation.after) || operation.name !== "remove") {
                yield* operation.run(store)
              }
              expect(yield* observe(file), label).toEqual(operation.after)
              cases++
            }
          }
          rows.push([`${operation.name}, durability "${durability}"`, calls, steps.join(", "), calls * ERRNOS.length])
        }
      }
      console.info(`session-storage fault sweep: ${cases} (operation, durability, call, errno) cases`)
      expect(cases).toBeGreaterThan(100)
      yield* reportSection(
        atomic,
        { area: "fault-injection", title: "1. Fault injection at every step" },
        "2-session-storage",
        `### SessionStorage (packages/session-storage/test/faultSweep.test.ts)\n\n` +
          `A store holding three saved sessions; each operation failed at each of its FileSystem calls with each of ` +
          `${ERRNOS.join(", ")}: **${cases} cases, all passed** (StorageFailure carrying the errno, a fresh store ` +
          `reads the sessions of before or of after and nothing else, no temp file, lock free for another process ` +
          `and for this one, the next call succeeds).\n\n` +
          table(["operation", "steps", "the steps, in order", "cases"], rows)
      )
    }).pipe(Effect.provide(Platform)), 300_000)
})
