/**
 * The crash simulator and the crash-consistency harness: the write paths
 * hold their guarantee in every durable state a power cut can leave, and
 * deliberately weakened writers are caught (the proof that the checker has
 * teeth). With RELIABILITY_REPORT=1 the counts go to
 * docs/reliability/crash-sim.md.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { afterAll, assert, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { CRASH_SIM, reportSection } from "../../../test-support/reliabilityReport.js"
import { AtomicFile } from "../src/AtomicFile.js"
import {
  checkCrashConsistency,
  type CrashCheckReport,
  type CrashedTree,
  type CrashModel,
  CrashSimulator,
  CrashViolation,
  layerCrashSim
} from "../src/testing.js"
import { LiveLayer } from "./support.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (text: string) => encoder.encode(text)

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a !== undefined && b !== undefined && a.length === b.length && a.every((byte, i) => byte === b[i])

const show = (content: Uint8Array | undefined): string =>
  content === undefined
    ? "missing"
    : content.length === 0
    ? "empty"
    : `${content.length} bytes starting "${decoder.decode(content.subarray(0, 12))}"`

/** A pattern long enough to span several 4 KiB pieces, different per seed. */
const pattern = (length: number, seed: string) => {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = seed.charCodeAt(i % seed.length)
  return out
}

/**
 * The whole-file guarantee: the target is the old content or the new one;
 * once the write was acknowledged, the new one (unless `atomicOnly`).
 */
const oldOrNew = (target: string, old: Uint8Array | undefined, next: Uint8Array, atomicOnly = false) =>
(
  tree: CrashedTree,
  acknowledged: ReadonlyArray<string>
) =>
  Effect.suspend(() => {
    const content = tree.files.get(target)
    if (!atomicOnly && acknowledged.length > 0) {
      return sameBytes(content, next)
        ? Effect.void
        : Effect.fail(`acknowledged write lost: the target is ${show(content)}`)
    }
    const isOld = old === undefined ? content === undefined : sameBytes(content, old)
    return isOld || sameBytes(content, next)
      ? Effect.void
      : Effect.fail(`the target is neither the old nor the new content: ${show(content)}`)
  })

// -- the cases: setup, the write, and the expected content ---------------------

interface WriteCase {
  readonly name: string
  readonly target: string
  readonly old: Uint8Array | undefined
  readonly next: Uint8Array
}

const cases: ReadonlyArray<WriteCase> = [
  { name: "first write", target: "/data/target.txt", old: undefined, next: pattern(6000, "new!") },
  { name: "overwrite", target: "/data/target.txt", old: pattern(5000, "old."), next: pattern(9000, "new!") },
  { name: "write creating parents", target: "/data/a/b/target.txt", old: undefined, next: pattern(100, "new!") }
]

const setupFor = (testCase: WriteCase) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory("/data", { recursive: true })
    if (testCase.old !== undefined) yield* fs.writeFile(testCase.target, testCase.old)
  })

type Writer = (testCase: WriteCase) => Effect.Effect<void, unknown, AtomicFile | FileSystem.FileSystem>

const writers: Record<string, Writer> = {
  writeFile: (testCase) => Effect.flatMap(AtomicFile, (atomic) => atomic.writeFile(testCase.target, testCase.next)),
  // chunks of 3000 bytes: writes that cross 4 KiB boundaries, so tearing is checked
  writeStream: (testCase) =>
    Effect.flatMap(AtomicFile, (atomic) =>
      atomic.writeStream(
        testCase.target,
        Stream.fromIterable(
          Array.from(
            { length: Math.ceil(testCase.next.length / 3000) },
            (_, i) => testCase.next.subarray(i * 3000, (i + 1) * 3000)
          )
        )
      ))
}

/** A writer that renames before it syncs: the textbook mistake. */
const renameBeforeSync: Writer = (testCase) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const temp = `${testCase.target}.tmp`
    yield* Effect.scoped(Effect.gen(function*() {
      const file = yield* fs.open(temp, { flag: "wx" })
      yield* file.writeAll(testCase.next)
      yield* fs.rename(temp, testCase.target)
      yield* file.sync
    }))
    yield* Effect.scoped(Effect.flatMap(fs.open("/data", { flag: "r" }), (directory) => directory.sync))
  })

const run = (
  testCase: WriteCase,
  write: Writer,
  model: CrashModel,
  options: { readonly atomicOnly?: boolean; readonly guessTargets?: boolean } = {}
) =>
  checkCrashConsistency<string, unknown, AtomicFile | FileSystem.FileSystem>(
    (acknowledge) => Effect.zipRight(write(testCase), acknowledge("written")),
    oldOrNew(testCase.target, testCase.old, testCase.next, options.atomicOnly),
    { model, setup: setupFor(testCase), guessTargets: options.guessTargets ?? false }
  )

// -- what the report says -------------------------------------------------------

const consistentRows: Array<string> = []
const weakenedRows: Array<string> = []
const row = (cells: ReadonlyArray<string | number>) => `| ${cells.join(" | ")} |`

afterAll(() =>
  Effect.flatMap(AtomicFile, (atomic) =>
    reportSection(
      atomic,
      CRASH_SIM,
      "atomic-file",
      [
        "### `@intent/atomic-file` write paths",
        "",
        "Each row: one operation run once on the simulator; at every FileSystem call boundary every durable state",
        "a power cut could leave was enumerated and the invariant checked on each distinct one (crash points:",
        "boundaries where the journal or the acknowledgements changed; a row is written only when no state",
        "violated the invariant).",
        "",
        row([
          "operation",
          "model",
          "FileSystem calls",
          "crash points (distinct)",
          "crash states",
          "trees checked",
          "violations"
        ]),
        row(["---", "---", "---:", "---:", "---:", "---:", "---:"]),
        ...consistentRows,
        "",
        "Deliberately weakened writers, kept in the suite as expected failures: the violation the harness found",
        "and the length of the shortest trace (FileSystem calls completed before the power cut).",
        "",
        row(["variant", "model", "invariant", "result", "trace length"]),
        row(["---", "---", "---", "---", "---:"]),
        ...weakenedRows
      ].join("\n")
    )).pipe(Effect.provide(LiveLayer), Effect.runPromise)
)

const recordConsistent = (operation: string, report: CrashCheckReport) =>
  consistentRows.push(
    row([operation, report.model, report.calls, report.crashPoints, report.states, report.checked, 0])
  )

// -- the simulator as a FileSystem ----------------------------------------------

describe("CrashSimFileSystem", () => {
  it.effect("the live view sees every change at once; the durable view only what was synced", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const sim = yield* CrashSimulator
      yield* fs.makeDirectory("/d")
      yield* fs.writeFileString("/d/f", "unsynced")
      expect(yield* fs.readFileString("/d/f")).toBe("unsynced")
      // nothing synced: not even the directory survives
      expect([...(yield* sim.durableTree).directories]).toEqual(["/"])

      yield* Effect.scoped(Effect.flatMap(fs.open("/d/f", { flag: "r+" }), (file) => file.sync))
      yield* Effect.scoped(Effect.flatMap(fs.open("/", { flag: "r" }), (root) => root.sync))
      // the file's data and the root's entry are durable; the entry of f in /d is not
      const tree = yield* sim.durableTree
      expect([...tree.directories]).toEqual(["/", "/d"])
      expect(tree.files.has("/d/f")).toBe(false)

      yield* Effect.scoped(Effect.flatMap(fs.open("/d", { flag: "r" }), (directory) => directory.sync))
      expect(decoder.decode((yield* sim.durableTree).files.get("/d/f"))).toBe("unsynced")
    }).pipe(Effect.provide(layerCrashSim())))

  it.effect("ext4-ordered: a file's fsync commits the journal, so its new entry survives too", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const sim = yield* CrashSimulator
      yield* fs.makeDirectory("/d")
      yield* Effect.scoped(Effect.gen(function*() {
        const file = yield* fs.open("/d/f", { flag: "wx" })
        yield* file.writeAll(bytes("synced"))
        yield* file.sync
      }))
      expect(decoder.decode((yield* sim.durableTree).files.get("/d/f"))).toBe("synced")
    }).pipe(Effect.provide(layerCrashSim({ model: "ext4-ordered" }))))

  it.effect("a file renamed while open keeps its writes; concurrent fibers each get their own file", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const atomic = yield* AtomicFile
      const sim = yield* CrashSimulator
      yield* fs.makeDirectory("/d")
      yield* Effect.scoped(Effect.flatMap(fs.open("/", { flag: "r" }), (root) => root.sync))
      yield* Effect.scoped(Effect.gen(function*() {
        const file = yield* fs.open("/d/a", { flag: "wx" })
        yield* file.writeAll(bytes("before "))
        yield* fs.rename("/d/a", "/d/b")
        yield* file.writeAll(bytes("after"))
        yield* file.sync
      }))
      yield* Effect.forEach(
        ["x", "y", "z"],
        (name) => atomic.writeFileString(`/d/${name}`, name.repeat(5000)),
        { concurrency: "unbounded" }
      )
      yield* Effect.scoped(Effect.flatMap(fs.open("/d", { flag: "r" }), (directory) => directory.sync))
      expect(yield* fs.readFileString("/d/b")).toBe("before after")
      const tree = yield* sim.durableTree
      expect(decoder.decode(tree.files.get("/d/b"))).toBe("before after")
      expect(tree.files.has("/d/a")).toBe(false)
      for (const name of ["x", "y", "z"]) expect(decoder.decode(tree.files.get(`/d/${name}`))).toBe(name.repeat(5000))
    }).pipe(Effect.provide(layerCrashSim())))

  it.effect("the README's example: the config survives a power cut once saved", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      yield* atomic.writeFileString("/app/config.json", "{}")
      const tree = yield* (yield* CrashSimulator).durableTree
      expect(decoder.decode(tree.files.get("/app/config.json"))).toBe("{}")
      // the same write without fsync is live but not durable
      yield* atomic.writeFileString("/app/other.json", "{}", { durability: "none" })
      expect(yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString("/app/other.json"))).toBe("{}")
      expect((yield* (yield* CrashSimulator).durableTree).files.has("/app/other.json")).toBe(false)
    }).pipe(Effect.provide(layerCrashSim())))

  it.effect("methods it does not support fail with BadArgument, not a silent success", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const error = yield* Effect.flip(fs.link("/a", "/b"))
      expect(error._tag).toBe("BadArgument")
      expect(error.message).toContain("link is not supported")
    }).pipe(Effect.provide(layerCrashSim())))
})

// -- the real write paths: no violation -----------------------------------------

describe("checkCrashConsistency: AtomicFile holds its guarantee in every crash state", () => {
  for (const model of ["posix", "ext4-ordered"] as const) {
    for (const [writerName, write] of Object.entries(writers)) {
      for (const testCase of cases) {
        // the write path of AtomicFile.Default, then that of layerNode (the
        // target guessed with an lstat, emulated by readLink and stat)
        for (const guessTargets of [false, true]) {
          const variant = guessTargets ? ", target guessed (layerNode)" : ""
          it.effect(`${writerName}, durability full, ${testCase.name}${variant} (${model})`, () =>
            Effect.gen(function*() {
              const report = yield* run(testCase, write, model, { guessTargets })
              expect(report.crashPoints).toBeGreaterThan(5)
              expect(report.states).toBeGreaterThanOrEqual(report.crashPoints)
              recordConsistent(`${writerName} "full", ${testCase.name}${variant}`, report)
            }))
        }
      }
    }
  }

  it.effect("writes to several files from concurrent fibers (posix)", () =>
    Effect.gen(function*() {
      const targets = ["/data/p", "/data/q", "/data/r"]
      // 10,000 bytes each: three 4 KiB pieces per file, pending at once in three files
      const next = (target: string) => pattern(10_000, `new ${target};`)
      const old = (target: string) => pattern(5_000, `old ${target};`)
      const report = yield* checkCrashConsistency<string, unknown, AtomicFile>(
        (acknowledge) =>
          Effect.forEach(
            targets,
            (target) =>
              Effect.zipRight(
                Effect.flatMap(AtomicFile, (atomic) => atomic.writeFile(target, next(target))),
                acknowledge(target)
              ),
            { concurrency: "unbounded", discard: true }
          ),
        (tree, acknowledged) =>
          Effect.forEach(targets, (target) => {
            const content = tree.files.get(target)
            if (acknowledged.includes(target) && !sameBytes(content, next(target))) {
              return Effect.fail(`acknowledged ${target} lost: ${show(content)}`)
            }
            const before = target === "/data/r" ? content === undefined : sameBytes(content, old(target))
            return before || sameBytes(content, next(target))
              ? Effect.void
              : Effect.fail(`${target} is ${show(content)}`)
          }),
        {
          setup: Effect.flatMap(FileSystem.FileSystem, (fs) =>
            Effect.zipRight(
              fs.makeDirectory("/data"),
              Effect.forEach(targets.slice(0, 2), (target) => fs.writeFile(target, old(target)))
            ))
        }
      )
      recordConsistent("writeFile \"full\", 3 files of 10,000 bytes from concurrent fibers", report)
    }))
})

describe("checkCrashConsistency is bounded", () => {
  it.effect("a crash point with more states than maxStatesPerCrashPoint stops the check with a defect saying so", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        checkCrashConsistency<string, unknown, AtomicFile>(
          () =>
            Effect.forEach(
              ["/data/p", "/data/q", "/data/r"],
              (target) => Effect.flatMap(AtomicFile, (atomic) => atomic.writeFile(target, pattern(10_000, target))),
              { concurrency: "unbounded", discard: true }
            ),
          () => Effect.void,
          {
            setup: Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeDirectory("/data")),
            maxStatesPerCrashPoint: 20
          }
        )
      )
      assert(Exit.isFailure(exit) && Cause.isDie(exit.cause), "expected a defect")
      expect(Cause.pretty(exit.cause)).toMatch(/durable states, more than the limit of 20/)
    }))
})

// -- the weakened writers: each is caught -----------------------------------------

describe("checkCrashConsistency finds the violations of weakened writers (expected failures)", () => {
  const overwrite = cases[1] as WriteCase
  const firstWrite = cases[0] as WriteCase

  const expectViolation = (
    variant: string,
    effect: Effect.Effect<CrashCheckReport, unknown>,
    pattern: RegExp,
    invariant: string,
    model: CrashModel
  ) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(effect)
      assert(error instanceof CrashViolation, `expected a CrashViolation, got ${String(error)}`)
      expect(error.violation).toMatch(pattern)
      expect(error.trace.length).toBeGreaterThan(0)
      weakenedRows.push(row([variant, model, invariant, `found: ${error.violation}`, error.trace.length]))
      return error
    })

  const expectNone = (variant: string, effect: Effect.Effect<CrashCheckReport, unknown>, invariant: string) =>
    Effect.gen(function*() {
      const report = yield* effect
      weakenedRows.push(
        row([variant, report.model, invariant, `no violation in ${report.states} states`, "-"])
      )
    })

  const fileDurability: Writer = (testCase) =>
    Effect.flatMap(AtomicFile, (atomic) => atomic.writeFile(testCase.target, testCase.next, { durability: "file" }))
  const noDurability: Writer = (testCase) =>
    Effect.flatMap(AtomicFile, (atomic) => atomic.writeFile(testCase.target, testCase.next, { durability: "none" }))

  for (const model of ["posix", "ext4-ordered"] as const) {
    it.effect(`durability "file": the acknowledged write is lost (${model})`, () =>
      Effect.gen(function*() {
        const error = yield* expectViolation(
          "writeFile durability \"file\", overwrite",
          run(overwrite, fileDurability, model),
          /^acknowledged write lost: the target is 5000 bytes/,
          "old or new; new once acknowledged",
          model
        )
        // the rename was still pending when the power was cut
        expect(error.fates.some((fate) => /^lost: rename .*-> \/data\/target\.txt$/.test(fate))).toBe(true)
      }))
  }

  it.effect("durability \"none\": an empty or torn target (posix)", () =>
    Effect.gen(function*() {
      const error = yield* expectViolation(
        "writeFile durability \"none\", overwrite",
        run(overwrite, noDurability, "posix", { atomicOnly: true }),
        /^the target is neither the old nor the new content: (empty|\d+ bytes)/,
        "old or new",
        "posix"
      )
      expect(error.fates.some((fate) => /^persisted: rename/.test(fate))).toBe(true)
    }))

  it.effect("durability \"none\" on ext4 data=ordered: the data reaches the disk before the rename", () =>
    expectNone(
      "writeFile durability \"none\", overwrite",
      run(overwrite, noDurability, "ext4-ordered", { atomicOnly: true }),
      "old or new"
    ))

  it.effect("a writer that renames before it syncs: an empty target (posix)", () =>
    Effect.gen(function*() {
      const error = yield* expectViolation(
        "hand-written: rename, then fsync",
        run(firstWrite, renameBeforeSync, "posix"),
        /^the target is neither the old nor the new content: (empty|\d+ bytes)/,
        "old or new; new once acknowledged",
        "posix"
      )
      expect(error.trace.at(-1)).toMatch(/^rename /)
      // the message lists the calls, then the fate of each pending change
      expect(error.message).toMatch(/^crash after 3 calls: the target is neither/)
      expect(error.message).toContain(
        "  3. rename /data/target.txt.tmp -> /data/target.txt\n  power cut; pending changes:"
      )
      expect(error.message).toMatch(/lost: write \/data\/target\.txt\.tmp \[0, 6000\)/)
    }))

  it.effect("a writer that renames before it syncs, on ext4 data=ordered: saved by the rename rule", () =>
    expectNone(
      "hand-written: rename, then fsync",
      run(firstWrite, renameBeforeSync, "ext4-ordered"),
      "old or new; new once acknowledged"
    ))
})

// -- append and update ------------------------------------------------------------

describe("checkCrashConsistency: append and update", () => {
  const records = ["first record", "second record ".repeat(400), "third", "fourth ".repeat(700)]

  for (const model of ["posix", "ext4-ordered"] as const) {
    it.effect(`append: acknowledged records survive; a torn record is never a line (${model})`, () =>
      Effect.gen(function*() {
        const report = yield* checkCrashConsistency<string, unknown, AtomicFile>(
          (acknowledge) =>
            Effect.forEach(records, (record) =>
              Effect.zipRight(
                Effect.flatMap(AtomicFile, (atomic) => atomic.append("/log/records.jsonl", record)),
                acknowledge(record)
              ), { discard: true }),
          (tree, acknowledged) =>
            Effect.suspend(() => {
              const content = tree.files.get("/log/records.jsonl")
              const text = content === undefined ? "" : decoder.decode(content)
              const parts = text.split("\n")
              const tail = parts.pop() as string
              // every complete line is the next record, in order
              const wrong = parts.findIndex((line, i) => line !== records[i])
              if (wrong !== -1) return Effect.fail(`line ${wrong + 1} is not a record: "${parts[wrong]?.slice(0, 20)}"`)
              if (parts.length < acknowledged.length) {
                return Effect.fail(`${acknowledged.length} records acknowledged, ${parts.length} survived`)
              }
              // an unterminated tail is a prefix of the record being written: never read as a line
              const next = records[parts.length] ?? ""
              return tail.length === 0 || (next.startsWith(tail) && tail.length <= next.length)
                ? Effect.void
                : Effect.fail(`the tail is not a prefix of a record: "${tail.slice(0, 20)}"`)
            }),
          { model, setup: Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeDirectory("/log")) }
        )
        recordConsistent(`append "full", ${records.length} records`, report)
      }))

    it.effect(`update: a counter never goes back past an acknowledged value, never torn (${model})`, () =>
      Effect.gen(function*() {
        const report = yield* checkCrashConsistency<number, unknown, AtomicFile>(
          (acknowledge) =>
            Effect.forEach([1, 2, 3], () =>
              Effect.flatMap(AtomicFile, (atomic) =>
                Effect.flatMap(
                  atomic.update("/data/counter", (current) =>
                    Effect.succeed(bytes(
                      String(
                        Number(Option.match(current, { onNone: () => "0", onSome: (b) => decoder.decode(b) })) + 1
                      ).padStart(4100, "0")
                    ))),
                  (next) => acknowledge(Number(decoder.decode(next)))
                )), { discard: true }),
          (tree, acknowledged) =>
            Effect.suspend(() => {
              const content = tree.files.get("/data/counter")
              const last = acknowledged.at(-1) ?? 0
              if (content === undefined) return last === 0 ? Effect.void : Effect.fail("the counter is gone")
              const text = decoder.decode(content)
              if (!/^\d{4100}$/.test(text)) return Effect.fail(`the counter is torn: ${show(content)}`)
              const value = Number(text)
              return value >= last && value <= last + 1
                ? Effect.void
                : Effect.fail(`the counter is ${value}, ${last} was acknowledged`)
            }),
          {
            model,
            setup: Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeDirectory("/data"))
          }
        )
        recordConsistent("update \"full\", 3 increments of a 4100-byte counter", report)
      }))
  }
})
