/**
 * Readers during writes: two writers replace one file continuously (a fiber
 * of this process and another process), while readers in this process read
 * it with plain `fs.readFile`: every read must be exactly one complete
 * version. The same harness with `fs.writeFile` as the writers is the
 * control that shows the check can fail: it must see partial reads.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { randomBytes } from "node:crypto"
import { readFile, writeFile } from "node:fs/promises"
import { reportSection, scaled, table } from "../../../../test-support/reliabilityReport.js"
import { AtomicFile } from "../../src/AtomicFile.js"
import { requireBuild, spawnScript } from "../childProcess.js"
import { LiveLayer, tempDirectory } from "../support.js"
import { parseVersion, versionBytes, versionSource } from "./versions.js"

const READS = scaled(20_000, 4_000)
const READERS = 4
const MAX_SIZE = 64 * 1024

/** Payload sizes log-uniform from 1 B to 64 KiB. */
const sizeOf = () => Math.floor(2 ** (Math.random() * 16))

/** Replaces argv[1] in a loop, with AtomicFile.writeFile or with fs.writeFile (argv[2]), from version 10^9 on. */
const writerScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect, Layer, ManagedRuntime } from "effect"
  import { AtomicFile } from DIST
  import { createHash, randomBytes } from "node:crypto"
  import { writeFile } from "node:fs/promises"
  const [file, how] = process.argv.slice(1)
  ${versionSource}
  const runtime = ManagedRuntime.make(AtomicFile.layerNode.pipe(Layer.provide(NodeContext.layer)))
  const write = how === "atomic"
    ? (bytes) => runtime.runPromise(Effect.flatMap(AtomicFile.AtomicFile, (atomic) => atomic.writeFile(file, bytes, { durability: "none" })))
    : (bytes) => writeFile(file, bytes)
  for (let n = 1e9; ; n++) {
    await write(version(n, Math.floor(2 ** (Math.random() * 16))))
    if (n === 1e9) console.log("writing")
  }
`

interface Outcome {
  readonly reads: number
  readonly partial: number
  readonly versions: number
}

/** `READS` reads by `READERS` concurrent readers while both writers run. */
const measure = (how: "atomic" | "plain") =>
  Effect.gen(function*() {
    const atomic = yield* AtomicFile
    const dir = yield* tempDirectory
    const file = `${dir}/versions`
    yield* atomic.writeFile(file, versionBytes(0, new Uint8Array(0)))
    const child = yield* spawnScript(writerScript, [file, how])
    yield* child.waitForLine((line) => line === "writing")
    let n = 1
    const writeOnce = Effect.suspend(() => {
      const bytes = versionBytes(n++, randomBytes(sizeOf()))
      return how === "atomic"
        ? atomic.writeFile(file, bytes, { durability: "none" })
        : Effect.promise(() => writeFile(file, bytes))
    })
    const writer = yield* Effect.fork(Effect.forever(writeOnce))
    const outcome = yield* Effect.promise(async (): Promise<Outcome> => {
      let started = 0
      let partial = 0
      const versions = new Set<number>()
      const reader = async () => {
        while (started < READS) {
          started++
          const parsed = parseVersion(await readFile(file).catch(() => new Uint8Array(0)))
          if ("problem" in parsed) partial++
          else versions.add(parsed.version)
        }
      }
      await Promise.all(Array.from({ length: READERS }, reader))
      return { reads: started, partial, versions: versions.size }
    })
    yield* Fiber.interrupt(writer)
    return outcome
  }).pipe(Effect.scoped)

describe("readers during writes", () => {
  it.live(
    `AtomicFile.writeFile: ${READS} reads while two writers replace the file, every read complete`,
    () =>
      Effect.gen(function*() {
        yield* requireBuild
        const atomic = yield* AtomicFile
        const project = yield* measure("atomic")
        const control = yield* measure("plain")
        console.info(`readers: AtomicFile ${JSON.stringify(project)}, fs.writeFile ${JSON.stringify(control)}`)
        expect(project.reads).toBe(READS)
        expect(project.partial).toBe(0)
        // the writers really did replace the file under the readers
        expect(project.versions).toBeGreaterThan(10)
        // the control: the same check catches fs.writeFile's partial files
        expect(control.reads).toBe(READS)
        expect(control.partial).toBeGreaterThan(0)
        const percent = (outcome: Outcome) => `${((100 * outcome.partial) / outcome.reads).toFixed(1)} %`
        yield* reportSection(
          atomic,
          { area: "readers", title: "3. Readers during writes" },
          "1-atomic-file",
          [
            `packages/atomic-file/test/reliability/readers.test.ts: two writers replace one file continuously, a fiber of the ` +
            `test process and another process, with self-describing versions (payload 1 B to ${MAX_SIZE / 1024} KiB, ` +
            `header with length and SHA-256); ${READERS} concurrent readers in the test process read it with plain ` +
            `\`fs.readFile\`, ${READS} reads in all. A read is partial unless it is exactly one complete version.`,
            "",
            table(["writers use", "reads", "distinct versions read", "partial reads"], [
              ["`AtomicFile.writeFile` (durability \"none\")", project.reads, project.versions, project.partial],
              [
                "`fs.writeFile` (the control)",
                control.reads,
                control.versions,
                `${control.partial} (${percent(control)})`
              ]
            ])
          ].join("\n")
        )
      }).pipe(Effect.provide(LiveLayer)),
    600_000
  )
})
