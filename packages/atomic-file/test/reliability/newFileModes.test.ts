/**
 * Permission bits of new files under concurrent writes: many new files
 * written at once must each get 0o666 minus the umask, never more.
 *
 * Node's `process.umask()` with no argument sets the mask to 0 for a moment
 * to read it: a file the thread pool creates in that moment gets every
 * permission bit. AtomicFile used to read the mask on every write, and one new
 * file in about 2,000 came out 0o666 instead of 0o644 (world-writable under
 * umask 002, say); it now reads it once, when its layer is built. The control
 * makes the same creates with `fs.open` while reading the mask the old way,
 * to show that the check can fail.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { open, stat } from "node:fs/promises"
import { reportSection, scaled, table } from "../../../../test-support/reliabilityReport.js"
import { AtomicFile } from "../../src/AtomicFile.js"
import { LiveDefaultLayer, LiveLayer, tempDirectory } from "../support.js"

const FILES = scaled(8_000, 1_000)
/** the control stops at its first wider file, or after this many */
const CONTROL_FILES = 20_000
const AT_ONCE = 200
const MASK = 0o022

interface Outcome {
  readonly files: number
  /** files with a permission bit the umask takes away */
  readonly wider: number
}

const countWider = (files: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    let wider = 0
    for (const file of files) {
      if (((await stat(file)).mode & 0o777 & MASK) !== 0) wider++
    }
    return wider
  })

/**
 * `count` new files, `AT_ONCE` at a time, written by `writeAll`; with
 * `untilWider`, only until a batch has a wider file.
 */
const measure = (writeAll: (files: ReadonlyArray<string>) => Effect.Effect<void>, count = FILES, untilWider = false) =>
  Effect.gen(function*() {
    const dir = yield* tempDirectory
    let wider = 0
    let written = 0
    while (written < count && !(untilWider && wider > 0)) {
      const files = Array.from({ length: AT_ONCE }, (_, i) => `${dir}/f${written + i}`)
      yield* writeAll(files)
      written += files.length
      wider += yield* countWider(files)
    }
    return { files: written, wider } satisfies Outcome
  }).pipe(Effect.scoped)

const bytes = new Uint8Array(8)

/**
 * The control: the files created with `fs.open` on the thread pool while
 * this thread reads the mask the way AtomicFile did on every write (many
 * times, so that even a short run shows the race).
 */
const controlWriteAll = (files: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const creating = files.map((file) => open(file, "wx", 0o666))
    for (let i = 0; i < 20 * files.length; i++) process.umask()
    for (const handle of await Promise.all(creating)) await handle.close()
  })

describe("permission bits of new files under concurrent writes", () => {
  it.live(
    `${FILES} new files, ${AT_ONCE} at a time: each 0o666 minus the umask, never more`,
    () =>
      Effect.gen(function*() {
        const previous = process.umask(MASK)
        const outcomes = yield* Effect.forEach(
          [["AtomicFile.layerNode", LiveLayer], ["AtomicFile.Default", LiveDefaultLayer]] as const,
          ([name, live]) =>
            Effect.map(
              Effect.provide(
                Effect.flatMap(
                  AtomicFile,
                  (atomic) =>
                    measure((files) =>
                      Effect.forEach(files, (file) =>
                        Effect.orDie(atomic.writeFile(file, bytes, { durability: "none" })), {
                        concurrency: "unbounded",
                        discard: true
                      })
                    )
                ),
                Layer.fresh(live)
              ),
              (outcome) =>
                [name, outcome] as const
            )
        ).pipe(Effect.ensuring(Effect.sync(() =>
          process.umask(previous)
        )))
        const control = yield* Effect.acquireUseRelease(
          Effect.sync(() => process.umask(MASK)),
          () => measure(controlWriteAll, CONTROL_FILES, true),
          (before) => Effect.sync(() => process.umask(before))
        )
        console.info(`new file modes: ${JSON.stringify(outcomes)}, control ${JSON.stringify(control)}`)
        for (const [, outcome] of outcomes) {
          expect(outcome.files).toBe(FILES)
          expect(outcome.wider).toBe(0)
        }
        // the control: the same check catches a create that raced the mask's read
        expect(control.wider).toBeGreaterThan(0)
        yield* Effect.flatMap(AtomicFile, (atomic) =>
          reportSection(
            atomic,
            { area: "modes", title: "6. Permission bits of new files under concurrent writes" },
            "1-atomic-file",
            [
              `packages/atomic-file/test/reliability/newFileModes.test.ts: ${FILES} new files written ${AT_ONCE} at ` +
              `a time under umask 022; a file is wider when it has a permission bit the umask takes away. Node's ` +
              "`process.umask()` sets the mask to 0 for a moment to read it: AtomicFile reads it once, when its layer " +
              "is built (from /proc/self/status where there is one). The control creates the files with `fs.open` " +
              "while the test's thread reads the mask that way, as AtomicFile did on every write until session 5; it stops " +
              "at the first batch with a wider file.",
              "",
              table(["writer", "new files", "wider than 0o666 minus the umask"], [
                ...outcomes.map(([name, outcome]) => [`\`${name}\` writeFile`, outcome.files, outcome.wider]),
                [
                  "`fs.open`, the mask read meanwhile with `process.umask()` (the control)",
                  control.files,
                  control.wider
                ]
              ])
            ].join("\n")
          ))
      }).pipe(Effect.provide(LiveLayer)),
    600_000
  )
})
