/**
 * Process kills: a child saves sessions (ten ids, each save a newer sequence
 * number in raw_notes) with durability "full" and a low compaction threshold,
 * so that kills land in appends and in compactions; it prints each
 * acknowledged save. The parent kills it with SIGKILL at random moments and,
 * after each kill, reopens the store: every acknowledged save is there (the
 * session's sequence number is at least the acknowledged one) and no line is
 * corrupt. Afterwards `cleanupStale` removes the compactions' leftover temp
 * files, and the store is unchanged.
 */
import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import { AtomicFile } from "@intent/atomic-file"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { killLoop } from "../../../../test-support/killLoop.js"
import { reportSection, scaled } from "../../../../test-support/reliabilityReport.js"
import { requireBuild, spawnScript } from "../childProcess.js"
import { session, tempDirectory, withStore } from "../support.js"

const KILLS = scaled(300, 20)
const MAX_DELAY_MILLIS = 250
const IDS = 10

/** Saves sequence numbers `go <n>`, `n + 1`, ... printing `ack <id> <n>` after each save returned. */
const saverScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect, Layer, ManagedRuntime } from "effect"
  import { SessionStorage } from DIST
  import { createInterface } from "node:readline"
  const [file, template] = process.argv.slice(1)
  const base = JSON.parse(template)
  const runtime = ManagedRuntime.make(
    SessionStorage.layer({ path: file, durability: "full", compactThreshold: ${IDS} }).pipe(Layer.provide(NodeContext.layer))
  )
  await runtime.runPromise(Effect.void)
  createInterface({ input: process.stdin }).once("line", async (line) => {
    for (let n = Number(line.split(" ")[1]); ; n++) {
      const id = "s-" + (n % ${IDS})
      await runtime.runPromise(
        Effect.flatMap(SessionStorage.SessionStorage, (store) => store.save({ ...base, id, raw_notes: String(n) }))
      )
      process.stdout.write("ack " + id + " " + n + "\\n")
    }
  })
  console.log("ready")
`

describe("SIGKILL at random moments", () => {
  it.live(
    `SessionStorage.save: ${KILLS} kills, every acknowledged save present after reopening`,
    () =>
      Effect.gen(function*() {
        yield* requireBuild
        const fs = yield* FileSystem.FileSystem
        const atomic = yield* AtomicFile.AtomicFile
        const dir = yield* tempDirectory
        const file = `${dir}/sessions.jsonl`
        /** per id, the newest save acknowledged (or seen on disk) so far */
        const acked = new Map<string, number>()
        let acknowledged = 0
        let unacknowledgedPresent = 0
        yield* killLoop({
          kills: KILLS,
          spawn: spawnScript(saverScript, [file, JSON.stringify(session("template"))]),
          go: (index) => String((index + 1) * 1_000_000),
          maxDelayMillis: MAX_DELAY_MILLIS,
          afterKill: (child, index) =>
            withStore({ path: file, compactThreshold: false }, (store) =>
              Effect.gen(function*() {
                for (const line of child.lines) {
                  const [word, id = "", n] = line.split(" ")
                  if (word !== "ack") continue
                  acked.set(id, Math.max(acked.get(id) ?? 0, Number(n)))
                  acknowledged++
                }
                const present = new Map((yield* store.list()).map((s) => [s.id, Number(s.raw_notes)]))
                const label = `kill ${index + 1}`
                for (const [id, n] of acked) expect(present.get(id), `${label}: ${id}`).toBeGreaterThanOrEqual(n)
                // at most the one save in flight is there without its acknowledgement
                const newer = [...present].filter(([id, n]) => n > (acked.get(id) ?? -1))
                expect(newer.length, label).toBeLessThanOrEqual(1)
                unacknowledgedPresent += newer.length
                // what is on disk now is what the next kills are measured against
                for (const [id, n] of present) acked.set(id, n)
                const report = yield* store.check()
                expect(report.corrupt, label).toEqual([])
              }))
        })
        // every writer acknowledged at least one write before its kill
        expect(acknowledged).toBeGreaterThanOrEqual(KILLS)

        const leftovers = (yield* fs.readDirectory(dir)).filter((name) => name.endsWith("#atomic-tmp"))
        const before = yield* fs.readFile(file)
        const cleaned = yield* atomic.cleanupStale(dir)
        expect(cleaned.removed.length).toBe(leftovers.length)
        expect((yield* fs.readDirectory(dir)).sort()).toEqual(["sessions.jsonl", "sessions.jsonl.lock"])
        expect(yield* fs.readFile(file)).toEqual(before)
        console.info(`session kills: ${KILLS}, acknowledged ${acknowledged}, ${leftovers.length} temp files left`)

        yield* reportSection(
          atomic,
          { area: "kills", title: "2. Process kills" },
          "2-session-storage",
          [
            `### SessionStorage.save, durability "full" (packages/session-storage/test/reliability/kills.test.ts)`,
            "",
            `- ${KILLS} SIGKILLs of the saving child, each 0 to ${MAX_DELAY_MILLIS} ms (uniformly random) after its first acknowledged save; ` +
            `${IDS} session ids saved over and over, compaction due every ${IDS} or so saves, so kills land in appends and in compactions.`,
            `- ${acknowledged} saves acknowledged. After every kill a freshly opened store held every acknowledged save ` +
            `(never an older one), no corrupt line, and at most the one save in flight beyond them ` +
            `(seen ${unacknowledgedPresent} times). Failures: 0.`,
            `- The kills left ${leftovers.length} temp files (interrupted compactions); \`cleanupStale\` removed them all, ` +
            `and the store and its lock file were unchanged.`
          ].join("\n")
        )
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.provideMerge(AtomicFile.AtomicFile.Default, NodeContext.layer))
      ),
    900_000
  )
})
