/**
 * Process kills: a child writes self-describing versions of one file
 * (`version <n> length <bytes> sha256 <hex>` and a random payload of 0 B to
 * 4 MiB) with `writeFile` and durability "full", printing each acknowledged
 * version; the parent kills it with SIGKILL at random moments. After each
 * kill the file must be exactly one complete version, not older than the last
 * acknowledged one (and at most one newer: written, killed before the
 * acknowledgement). Afterwards `cleanupStale` removes every temp file the
 * killed writers left, and nothing else.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { killLoop } from "../../../../test-support/killLoop.js"
import { reportSection, scaled } from "../../../../test-support/reliabilityReport.js"
import { AtomicFile } from "../../src/AtomicFile.js"
import { requireBuild, spawnScript } from "../childProcess.js"
import { listTree, LiveLayer, tempDirectory, tempFilesUnder } from "../support.js"
import { parseVersion, versionBytes, versionSource } from "./versions.js"

const KILLS = scaled(300, 20)
const MAX_DELAY_MILLIS = 250
const MAX_SIZE = 4 * 1024 * 1024

/** Writes versions `go <n>`, `n + 1`, ... of argv[1], printing `ack <n> <payload bytes>` after each. */
const writerScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect, Layer, ManagedRuntime } from "effect"
  import { AtomicFile } from DIST
  import { createHash, randomBytes } from "node:crypto"
  import { createInterface } from "node:readline"
  const [file] = process.argv.slice(1)
  const MAX = ${MAX_SIZE}
  // a tenth empty, a twentieth of the largest size, the rest log-uniform between
  const sizeOf = () => {
    const r = Math.random()
    return r < 0.1 ? 0 : r > 0.95 ? MAX : Math.floor(2 ** (Math.random() * 22))
  }
  ${versionSource}
  const runtime = ManagedRuntime.make(AtomicFile.layerNode.pipe(Layer.provide(NodeContext.layer)))
  await runtime.runPromise(Effect.void)
  createInterface({ input: process.stdin }).once("line", async (line) => {
    for (let n = Number(line.split(" ")[1]); ; n++) {
      const size = sizeOf()
      const bytes = version(n, size)
      await runtime.runPromise(Effect.flatMap(AtomicFile.AtomicFile, (atomic) => atomic.writeFile(file, bytes, { durability: "full" })))
      process.stdout.write("ack " + n + " " + size + "\\n")
    }
  })
  console.log("ready")
`

describe("SIGKILL at random moments", () => {
  it.live(
    `writeFile (durability "full"): ${KILLS} kills, always one complete version, never older than acknowledged`,
    () =>
      Effect.gen(function*() {
        yield* requireBuild
        const fs = yield* FileSystem.FileSystem
        const path = yield* Path.Path
        const atomic = yield* AtomicFile
        const dir = yield* tempDirectory
        const target = `${dir}/versions`
        yield* fs.writeFile(target, versionBytes(0, new Uint8Array(0)))

        let known = 0
        let acknowledged = 0
        const sizes = { empty: 0, max: 0, largest: 0 }
        const outcomes = { lastAcknowledged: 0, oneNewer: 0 }
        yield* killLoop({
          kills: KILLS,
          spawn: spawnScript(writerScript, [target]),
          go: () => String(known + 1),
          maxDelayMillis: MAX_DELAY_MILLIS,
          afterKill: (child, index) =>
            Effect.gen(function*() {
              for (const line of child.lines) {
                const [word, n, size] = line.split(" ")
                if (word !== "ack") continue
                known = Math.max(known, Number(n))
                acknowledged++
                sizes.empty += Number(size) === 0 ? 1 : 0
                sizes.max += Number(size) === MAX_SIZE ? 1 : 0
                sizes.largest = Math.max(sizes.largest, Number(size))
              }
              const parsed = parseVersion(yield* fs.readFile(target))
              const label = `kill ${index + 1}: last acknowledged ${known}`
              if ("problem" in parsed) assert.fail(`${label}: ${parsed.problem}`)
              expect(parsed.version, label).toBeGreaterThanOrEqual(known)
              expect(parsed.version, label).toBeLessThanOrEqual(known + 1)
              if (parsed.version === known) outcomes.lastAcknowledged++
              else outcomes.oneNewer++
              known = parsed.version
            })
        })
        expect(outcomes.lastAcknowledged + outcomes.oneNewer).toBe(KILLS)
        // every writer acknowledged at least one write before its kill
        expect(acknowledged).toBeGreaterThanOrEqual(KILLS)

        // cleanupStale: the killed writers' temp files go, and nothing else
        const leftovers = yield* tempFilesUnder(dir)
        const deadPid = 9_999_999 // above Linux's pid_max: never a running process
        const seeded: Record<string, string> = {
          "notes.txt": "keep me",
          ".hidden": "keep me too",
          [`.versions~${deadPid}-0123456789abcdef#atomic-tmp.bak`]: "not a temp name",
          [`.versions~${process.pid}-0123456789abcdef#atomic-tmp`]: "a running writer's temp file"
        }
        for (const [name, text] of Object.entries(seeded)) yield* fs.writeFileString(`${dir}/${name}`, text)
        const staleSeed = `.versions~${deadPid}-fedcba9876543210#atomic-tmp`
        yield* fs.writeFileString(`${dir}/${staleSeed}`, "a crashed writer's temp file")
        const directoryNamedLikeTemp = `.sub~${deadPid}-00000000000000ff#atomic-tmp`
        yield* fs.makeDirectory(`${dir}/${directoryNamedLikeTemp}`)
        const linkNamedLikeTemp = `.link~${deadPid}-0000000000000aaa#atomic-tmp`
        yield* fs.symlink(`${dir}/notes.txt`, `${dir}/${linkNamedLikeTemp}`)
        const before = yield* fs.readFile(target)

        const report = yield* atomic.cleanupStale(dir)
        expect(report.removed.map((file) => path.basename(file)).sort()).toEqual([...leftovers, staleSeed].sort())
        expect(report.kept.map((file) => path.basename(file))).toEqual([
          `.versions~${process.pid}-0123456789abcdef#atomic-tmp`
        ])
        expect(yield* listTree(dir)).toEqual(
          [...Object.keys(seeded), directoryNamedLikeTemp, linkNamedLikeTemp, "versions"].sort()
        )
        for (const [name, text] of Object.entries(seeded)) {
          expect(yield* fs.readFileString(`${dir}/${name}`), name).toBe(text)
        }
        expect(yield* fs.readLink(`${dir}/${linkNamedLikeTemp}`)).toBe(`${dir}/notes.txt`)
        expect(yield* fs.readFile(target)).toEqual(before)
        console.info(`kills: ${KILLS}, acknowledged ${acknowledged}, ${leftovers.length} temp files left by kills`)

        yield* reportSection(
          atomic,
          { area: "kills", title: "2. Process kills" },
          "1-atomic-file",
          [
            `### AtomicFile.writeFile, durability "full" (packages/atomic-file/test/reliability/kills.test.ts)`,
            "",
            `- ${KILLS} SIGKILLs of the writer child, each 0 to ${MAX_DELAY_MILLIS} ms (uniformly random) after its first acknowledged write.`,
            `- ${acknowledged} versions acknowledged; payload sizes 0 B to ${sizes.largest} B (${sizes.empty} empty, ${sizes.max} of 4 MiB).`,
            `- After every kill the file was exactly one complete version (header, length and SHA-256 checked), not older than the last acknowledged one: ` +
            `the last acknowledged version after ${outcomes.lastAcknowledged} kills, the next one (renamed, killed before its acknowledgement) after ${outcomes.oneNewer}. Failures: 0.`,
            `- The kills left ${leftovers.length} temp files (writes interrupted before their rename). \`cleanupStale\` removed all of them and one seeded stale temp file, ` +
            `and kept the ${
              Object.keys(seeded).length + 2
            } seeded others byte for byte (ordinary files, a name that only looks like a temp name, a running process's temp file, a directory and a symlink named like stale temp files).`
          ].join("\n")
        )
      }).pipe(Effect.scoped, Effect.provide(LiveLayer)),
    900_000
  )
})
