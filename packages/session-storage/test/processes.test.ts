/**
 * Several processes on one store: no save is lost, also when one of them is
 * killed with SIGKILL, while saving or while it holds the lock.
 */
import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { session, tempDirectory, withStore } from "./support.js"

const packageRoot = fileURLToPath(new URL("..", import.meta.url))
const distIndex = fileURLToPath(new URL("../dist/index.js", import.meta.url))
const baseSession = session("template")

/**
 * Saves `count` sessions `<tag>-<i>` into `file`, printing `ack <id>` after
 * each save returned (so after it is durable).
 */
const saverScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect } from "effect"
  import { SessionStorage } from ${JSON.stringify(distIndex)}
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

interface Running {
  readonly child: ChildProcess
  readonly acks: Array<string>
  readonly lines: Array<string>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const start = (script: string, args: ReadonlyArray<string>): Running => {
  const child = spawn(process.execPath, ["--input-type=module", "-e", script, "--", ...args], {
    cwd: packageRoot,
    stdio: ["ignore", "pipe", "inherit"]
  })
  const acks: Array<string> = []
  const lines: Array<string> = []
  let buffer = ""
  child.stdout?.on("data", (data: Buffer) => {
    buffer += data.toString()
    const parts = buffer.split("\n")
    buffer = parts.pop() ?? ""
    for (const line of parts) {
      lines.push(line)
      if (line.startsWith("ack ")) acks.push(line.slice(4))
    }
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal }))
  )
  return { child, acks, lines, exited }
}

const waitUntil = (condition: () => boolean, what: string, timeoutMs = 30_000) =>
  Effect.async<void, Error>((resume) => {
    const started = Date.now()
    const timer = setInterval(() => {
      if (condition()) {
        clearInterval(timer)
        resume(Effect.void)
      } else if (Date.now() - started > timeoutMs) {
        clearInterval(timer)
        resume(Effect.fail(new Error(`timed out waiting for ${what}`)))
      }
    }, 5)
    return Effect.sync(() => clearInterval(timer))
  })

const finished = (running: Running) => Effect.promise(() => running.exited)

const requireBuild = Effect.suspend(() =>
  existsSync(distIndex) ? Effect.void : Effect.dieMessage(`build first (pnpm build): ${distIndex} is missing`)
)

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
        const children = tags.map((tag) => start(saverScript, [file, tag, "200", "full"]))
        for (const running of children) {
          const exit = yield* finished(running)
          expect(exit.code, running.lines.slice(-3).join(" | ")).toBe(0)
          expect(running.acks.length).toBe(200)
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
        const holder = start(lockHolderScript, [file])
        yield* waitUntil(() => holder.lines.includes("locked"), "the holder to lock")
        const savers = ["s0", "s1", "s2"].map((tag) => start(saverScript, [file, tag, "100", "full"]))
        // the savers are stuck behind the holder's lock
        yield* Effect.sleep("500 millis")
        expect(savers.map((s) => s.acks.length)).toEqual([0, 0, 0])
        holder.child.kill("SIGKILL")
        expect((yield* finished(holder)).signal).toBe("SIGKILL")
        // and a saver killed in the middle of its saves
        const victim = start(saverScript, [file, "victim", "100000", "full"])
        yield* waitUntil(() => victim.acks.length >= 30, "the victim's first saves")
        victim.child.kill("SIGKILL")
        expect((yield* finished(victim)).signal).toBe("SIGKILL")
        for (const running of savers) {
          expect((yield* finished(running)).code).toBe(0)
        }
        const present = new Set(yield* storeIds(file))
        const acknowledged = [...savers.flatMap((s) => s.acks), ...victim.acks]
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
