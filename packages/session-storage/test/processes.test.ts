/**
 * Several processes on one store: no save is lost, also when one of them is
 * killed with SIGKILL, while saving or while it holds the lock.
 */
import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type Child, kill, requireBuild, spawnScript } from "./childProcess.js"
import { session, tempDirectory, withStore } from "./support.js"

const baseSession = session("template")

/**
 * Saves `count` sessions `<tag>-<i>` into `file`, printing `ack <id>` after
 * each save returned (so after it is durable).
 */
const saverScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect } from "effect"
  import { SessionStorage } from DIST
  const [file, tag, count, durability] = process.argv.slice(1)
  const base = ${JSON.stringify(baseSession)}
  Effect.gen(function*() {
    const store = yield* SessionStorage.SessionStorage
    for (let i = 0; i < Number(count); i++) {
      const id = tag + "-" + i
      yield* store.save({ ...base, id, raw_notes: "saved by " + tag })
      process.stdout.write("ack " + id + "\\n")
    }
  }).pipe(
    Effect.provide(SessionStorage.layer({ path: file, durability, compactThreshold: 500 })),
    Effect.provide(NodeContext.layer),
    Effect.runPromise
  ).then(() => console.log("done"), (e) => { console.log("failed " + e); process.exit(1) })
`

/** Takes the store's lock, says so, and holds it until killed. */
const lockHolderScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect } from "effect"
  import { FileLock } from "@intent/atomic-file"
  const [file] = process.argv.slice(1)
  Effect.gen(function*() {
    const lock = yield* FileLock.FileLock
    yield* lock.acquire(file)
    console.log("locked")
    yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(FileLock.layer), Effect.provide(NodeContext.layer), Effect.runPromise)
`

/** The ids a saver acknowledged so far. */
const acksOf = (child: Child) => child.lines.filter((line) => line.startsWith("ack ")).map((line) => line.slice(4))

const storeIds = (file: string) =>
  withStore({ path: file }, (store) =>
    Effect.gen(function*() {
      const sessions = yield* store.list()
      return sessions.map((s) => s.id)
    }))

describe("several processes on one store", () => {
  it.live(
    "8 processes x 200 saves at once: all 1,600 present, none duplicated after compaction",
    () =>
      Effect.gen(function*() {
        yield* requireBuild
        const dir = yield* tempDirectory
        const file = `${dir}/sessions.jsonl`
        const tags = ["p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"]
        const children = yield* Effect.forEach(tags, (tag) => spawnScript(saverScript, [file, tag, "200", "full"]))
        for (const child of children) {
          const exit = yield* child.exit
          expect(exit.code, child.lines.slice(-3).join(" | ")).toBe(0)
          expect(acksOf(child).length).toBe(200)
        }
        const expected = tags.flatMap((tag) => Array.from({ length: 200 }, (_, i) => `${tag}-${i}`))
        const present = yield* storeIds(file)
        expect(present.length).toBe(1600)
        expect(new Set(present)).toEqual(new Set(expected))
        yield* withStore({ path: file }, (store) =>
          Effect.gen(function*() {
            yield* store.compact()
            const report = yield* store.check()
            expect(report).toMatchObject({ ok: true, sessions: 1600, records: 1600, superseded: 0, lines: 1600 })
          }))
      }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)),
    180_000
  )

  it.live(
    "a process killed with SIGKILL while it holds the lock: the others carry on, no acknowledged save is lost",
    () =>
      Effect.gen(function*() {
        yield* requireBuild
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        const file = `${dir}/sessions.jsonl`
        const holder = yield* spawnScript(lockHolderScript, [file])
        yield* holder.waitForLine((line) => line === "locked")
        const savers = yield* Effect.forEach(["s0", "s1", "s2"], (tag) =>
          spawnScript(saverScript, [file, tag, "100", "full"]))
        // the savers are stuck behind the holder's lock
        yield* Effect.sleep("500 millis")
        expect(savers.map((s) =>
          acksOf(s).length
        )).toEqual([0, 0, 0])
        expect((yield* kill(holder)).signal).toBe("SIGKILL")
        // and a saver killed in the middle of its saves
        const victim = yield* spawnScript(saverScript, [file, "victim", "100000", "full"])
        yield* victim.waitForLine((line) => line === "ack victim-29")
        expect((yield* kill(victim)).signal).toBe("SIGKILL")
        for (const saver of savers) {
          expect((yield* saver.exit).code).toBe(0)
        }
        const present = new Set(yield* storeIds(file))
        const acknowledged = [...savers.flatMap(acksOf), ...acksOf(victim)]
        expect(acknowledged.length).toBeGreaterThanOrEqual(330)
        for (const id of acknowledged) expect(present.has(id), id).toBe(true)
        // at most the victim's one unacknowledged save beyond what was acked
        expect(present.size - acknowledged.length).toBeLessThanOrEqual(1)
        const report = yield* withStore({ path: file }, (store) => store.check())
        // the kill may leave a torn final line, reported, never an acknowledged one
        expect(report.corrupt).toEqual([])
        expect(yield* fs.exists(`${file}.lock`)).toBe(true)
      }).pipe(Effect.scoped, Effect.provide(NodeContext.layer)),
    180_000
  )
})
