import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as FileLock from "../src/FileLock.js"
import { kill, requireBuild, spawnScript } from "./childProcess.js"
import { listTree, readText, tempDirectory } from "./support.js"

const KernelLayer = Layer.provideMerge(FileLock.layer, NodeContext.layer)
const MemoryLayer = Layer.provideMerge(FileLock.layerMemory, NodeContext.layer)

/**
 * A child that increments the number in `file` `iterations` times: read,
 * pause 3 ms, write back. With `lock` it holds the FileLock of `file` around
 * each increment; without it, concurrent children lose increments.
 */
const counterScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect } from "effect"
  import * as fs from "node:fs"
  import { FileLock } from DIST
  const [file, iterations, mode] = process.argv.slice(1)
  const pause = new Int32Array(new SharedArrayBuffer(4))
  const bump = Effect.sync(() => {
    const n = Number(fs.readFileSync(file, "utf8") || "0")
    Atomics.wait(pause, 0, 0, 3)
    fs.writeFileSync(file, String(n + 1))
  })
  const program = Effect.gen(function*() {
    const lock = yield* FileLock.FileLock
    for (let i = 0; i < Number(iterations); i++) {
      yield* (mode === "lock" ? lock.withLock(file)(bump) : bump)
    }
  })
  program.pipe(Effect.provide(FileLock.layer), Effect.provide(NodeContext.layer), Effect.runPromise)
    .then(() => console.log("done"), (error) => { console.log("failed " + error); process.exit(1) })
`

/** A child that takes the lock of `file`, says so, and holds it until killed. */
const holderScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect } from "effect"
  import { FileLock } from DIST
  const [file] = process.argv.slice(1)
  Effect.gen(function*() {
    const lock = yield* FileLock.FileLock
    yield* lock.acquire(file)
    console.log("locked")
    yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(FileLock.layer), Effect.provide(NodeContext.layer), Effect.runPromise)
`

const runCounters = (file: string, processes: number, iterations: number, mode: "lock" | "none") =>
  Effect.forEach(
    Array.from({ length: processes }),
    () =>
      Effect.flatMap(spawnScript(counterScript, [file, String(iterations), mode]), (child) =>
        Effect.map(child.exit, (exit) => {
          expect(exit.code).toBe(0)
        })),
    { concurrency: "unbounded", discard: true }
  )

describe("FileLock.layer (kernel locks)", () => {
  it.scoped(
    "4 processes x 50 locked increments: none lost; the unlocked control loses some",
    () =>
      Effect.gen(function*() {
        yield* requireBuild
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        yield* fs.writeFileString(`${dir}/counter`, "0")
        yield* runCounters(`${dir}/counter`, 4, 50, "lock")
        expect(yield* readText(`${dir}/counter`)).toBe("200")
        // the lock lives in its own file, which stays
        expect(yield* listTree(dir)).toEqual(["counter", "counter.lock"])

        // control: the same children without the lock lose increments, which
        // shows that the check above can fail
        yield* fs.writeFileString(`${dir}/control`, "0")
        yield* runCounters(`${dir}/control`, 4, 50, "none")
        expect(Number(yield* readText(`${dir}/control`))).toBeLessThan(200)
      }).pipe(Effect.provide(KernelLayer)),
    120_000
  )

  it.scopedLive("a holder killed with SIGKILL does not block the others", () =>
    Effect.gen(function*() {
      yield* requireBuild
      const lock = yield* FileLock.FileLock
      const dir = yield* tempDirectory
      const holder = yield* spawnScript(holderScript, [`${dir}/data`])
      yield* holder.waitForLine((line) => line === "locked")
      // held by a live process: times out with a typed error
      const error = yield* Effect.flip(Effect.scoped(lock.acquire(`${dir}/data`, { timeout: "300 millis" })))
      assert.strictEqual(error._tag, "LockTimeout")
      if (error._tag === "LockTimeout") {
        expect(error.lockPath).toBe(`${dir}/data.lock`)
      }
      // the kernel releases the dead holder's lock: no stale lock to reclaim
      const exit = yield* kill(holder)
      expect(exit.signal).toBe("SIGKILL")
      yield* Effect.scoped(lock.acquire(`${dir}/data`, { timeout: "5 seconds" }))
    }).pipe(Effect.provide(KernelLayer)), 60_000)

  it.scopedLive(
    "a lock held in this process is taken by another process only after release",
    () =>
      Effect.gen(function*() {
        yield* requireBuild
        const lock = yield* FileLock.FileLock
        const dir = yield* tempDirectory
        const released = yield* Deferred.make<void>()
        const holding = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
          yield* lock.acquire(`${dir}/data`)
          yield* Deferred.succeed(holding, undefined)
          yield* Deferred.await(released)
        })))
        yield* Deferred.await(holding)
        const child = yield* spawnScript(holderScript, [`${dir}/data`])
        yield* Effect.sleep("300 millis")
        expect(child.lines).toEqual([])
        yield* Deferred.succeed(released, undefined)
        yield* Fiber.join(holder)
        yield* child.waitForLine((line) => line === "locked")
        yield* kill(child)
      }).pipe(Effect.provide(KernelLayer)),
    60_000
  )

  it.scoped("the lock file of a 255-byte name stays within 255 bytes", () =>
    Effect.gen(function*() {
      const lock = yield* FileLock.FileLock
      const path = yield* Path.Path
      const dir = yield* tempDirectory
      const name = "n".repeat(255)
      yield* Effect.scoped(lock.acquire(`${dir}/${name}`))
      const entries = yield* listTree(dir)
      expect(entries).toEqual([`${"n".repeat(250)}.lock`])
      expect(FileLock.lockPathFor(path, `${dir}/${name}`)).toBe(`${dir}/${"n".repeat(250)}.lock`)
    }).pipe(Effect.provide(KernelLayer)))

  it.scoped("a missing directory is created for the lock file; an unusable one is a LockFailure", () =>
    Effect.gen(function*() {
      const lock = yield* FileLock.FileLock
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* Effect.scoped(lock.acquire(`${dir}/new/sub/data`))
      expect(yield* listTree(dir)).toEqual(["new", "new/sub", "new/sub/data.lock"])
      yield* fs.writeFileString(`${dir}/file`, "x")
      const error = yield* Effect.flip(Effect.scoped(lock.acquire(`${dir}/file/data`)))
      assert.strictEqual(error._tag, "LockFailure")
      if (error._tag === "LockFailure") expect(error.reason._tag).toBe("NotDirectory")
    }).pipe(Effect.provide(KernelLayer)))
})

for (const [name, layer] of [["kernel", KernelLayer], ["memory", MemoryLayer]] as const) {
  describe(`FileLock (${name}) within one process`, () => {
    it.live("fibers take turns in call order, and the lock is released on scope close", () =>
      Effect.gen(function*() {
        const lock = yield* FileLock.FileLock
        const dir = yield* tempDirectory
        const log: Array<string> = []
        let inside = 0
        yield* Effect.forEach(
          [1, 2, 3, 4, 5],
          (i) =>
            lock.withLock(`${dir}/f`)(Effect.gen(function*() {
              inside++
              expect(inside).toBe(1)
              log.push(`in ${i}`)
              yield* Effect.sleep("5 millis")
              log.push(`out ${i}`)
              inside--
            })),
          { concurrency: "unbounded", discard: true }
        )
        expect(log).toEqual([1, 2, 3, 4, 5].flatMap((i) => [`in ${i}`, `out ${i}`]))
      }).pipe(Effect.scoped, Effect.provide(layer)))

    it.live("a waiter times out with LockTimeout; interrupting the holder releases the lock", () =>
      Effect.gen(function*() {
        const lock = yield* FileLock.FileLock
        const dir = yield* tempDirectory
        const holding = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          lock.withLock(`${dir}/f`)(Effect.zipRight(Deferred.succeed(holding, undefined), Effect.never))
        )
        yield* Deferred.await(holding)
        const error = yield* Effect.flip(lock.withLock(`${dir}/f`, { timeout: "100 millis" })(Effect.void))
        expect(error._tag).toBe("LockTimeout")
        const exit = yield* Fiber.interrupt(holder)
        expect(Exit.isInterrupted(exit)).toBe(true)
        expect(yield* lock.withLock(`${dir}/f`, { timeout: "1 second" })(Effect.succeed("free"))).toBe("free")
      }).pipe(Effect.scoped, Effect.provide(layer)))

    it.live("a failure inside releases the lock", () =>
      Effect.gen(function*() {
        const lock = yield* FileLock.FileLock
        const dir = yield* tempDirectory
        const error = yield* Effect.flip(lock.withLock(`${dir}/f`)(Effect.fail("inside" as const)))
        expect(error).toBe("inside")
        expect(yield* lock.withLock(`${dir}/f`, { timeout: "1 second" })(Effect.succeed("free"))).toBe("free")
      }).pipe(Effect.scoped, Effect.provide(layer)))
  })
}
