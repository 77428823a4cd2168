/**
 * SessionStorage under the crash simulator of `@intent/atomic-file/testing`:
 * at every FileSystem call boundary of a program of saves, removals and
 * compactions, every durable state a power cut could leave is opened by a
 * fresh store (as the next process would) and checked: no acknowledged
 * session lost, no session read back that was never saved, no corrupt line
 * (a torn final fragment of an unacknowledged save is allowed: it is not
 * read as a session). With RELIABILITY_REPORT=1 the counts go to
 * docs/reliability/crash-sim.md.
 */
import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { afterAll, expect, it } from "@effect/vitest"
import { AtomicFile, FileLock } from "@intent/atomic-file"
import { checkCrashConsistency, type CrashCheckReport, type CrashModel } from "@intent/atomic-file/testing"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { CRASH_SIM, reportSection } from "../../../test-support/reliabilityReport.js"
import { encodeText } from "../src/internal/lines.js"
import { encodeLine } from "../src/InterviewSession.js"
import { SessionStorage } from "../src/SessionStorage.js"
import * as Storage from "../src/SessionStorage.js"
import type { SessionStorageError } from "../src/SessionStorageError.js"
import { session } from "./support.js"

const FILE = "/project/.intent/sessions.jsonl"
const REJECTED = `${FILE}.rejected`

/** What the program did: a save or a removal started, or was acknowledged. */
interface Step {
  readonly phase: "start" | "done"
  readonly id: string
  /** the note of the saved version; undefined for a removal */
  readonly note: string | undefined
}

type Operation =
  | { readonly _tag: "save"; readonly id: string; readonly note: string }
  | { readonly _tag: "remove"; readonly id: string }
  | { readonly _tag: "compact" }

const save = (id: string, note: string): Operation => ({ _tag: "save", id, note })

/** A note long enough that lines cross 4 KiB boundaries, so tearing is checked. */
const note = (label: string, length: number) => `${label}:`.padEnd(length, label.slice(0, 1))

const storeOver = (options: Storage.SessionStorageOptions) =>
  Storage.layerWithoutDependencies(options).pipe(
    Layer.provideMerge(AtomicFile.AtomicFile.DefaultWithoutDependencies),
    Layer.provide(FileLock.layerMemory)
  )

const program = (options: Storage.SessionStorageOptions, operations: ReadonlyArray<Operation>) =>
(
  acknowledge: (step: Step) => Effect.Effect<void>
) =>
  Effect.provide(
    Effect.forEach(operations, (operation) =>
      Effect.flatMap(SessionStorage, (store): Effect.Effect<void, SessionStorageError> => {
        switch (operation._tag) {
          case "save":
            return Effect.zipRight(
              acknowledge({ phase: "start", id: operation.id, note: operation.note }),
              Effect.zipRight(
                store.save(session(operation.id, operation.note)),
                acknowledge({ phase: "done", id: operation.id, note: operation.note })
              )
            )
          case "remove":
            return Effect.zipRight(
              acknowledge({ phase: "start", id: operation.id, note: undefined }),
              Effect.zipRight(
                store.remove(operation.id),
                acknowledge({ phase: "done", id: operation.id, note: undefined })
              )
            )
          case "compact":
            return Effect.asVoid(store.compact())
        }
      }), { discard: true }),
    storeOver(options)
  )

/**
 * Opens the crashed tree with a fresh store. For each id: the version the
 * store returns (or its absence) must be the last acknowledged one or one
 * started after it; with nothing acknowledged, any version started or none.
 * `before` runs first on the crashed tree (the next process's own work);
 * `steps` adds what was saved outside the program (in the setup, or by
 * `before`).
 */
const invariant = (
  options: Storage.SessionStorageOptions,
  check: {
    readonly before?: Effect.Effect<void, unknown, SessionStorage | FileSystem.FileSystem>
    readonly steps?: (acknowledged: ReadonlyArray<Step>) => ReadonlyArray<Step>
  } = {}
) =>
(_tree: unknown, acknowledged: ReadonlyArray<Step>) =>
  Effect.gen(function*() {
    const store = yield* SessionStorage
    if (check.before !== undefined) yield* check.before
    const steps = check.steps === undefined ? acknowledged : check.steps(acknowledged)
    const report = yield* store.check()
    if (report.corrupt.length > 0) {
      return yield* Effect.fail(`a corrupt line: ${JSON.stringify(report.corrupt[0])}`)
    }
    const found = new Map((yield* store.list()).map((s) => [s.id, s.raw_notes as string | undefined]))
    const ids = new Set(steps.map((step) => step.id))
    for (const id of found.keys()) {
      if (!ids.has(id)) return yield* Effect.fail(`session ${id} was never saved`)
    }
    for (const id of ids) {
      const mine = steps.filter((step) => step.id === id)
      const lastDone = mine.map((step) => step.phase).lastIndexOf("done")
      // the acknowledged version and every version started after it
      const allowed = lastDone === -1
        ? [undefined, ...mine.map((step) => step.note)]
        : mine.slice(lastDone).map((step) => step.note)
      const value = found.get(id)
      if (!allowed.includes(value)) {
        return yield* Effect.fail(
          `session ${id} is ${value === undefined ? "missing" : `"${value.slice(0, 12)}"`}` +
            `, acknowledged: ${lastDone === -1 ? "nothing" : `"${String(mine[lastDone]?.note).slice(0, 12)}"`}`
        )
      }
    }
  }).pipe(Effect.provide(storeOver(options)))

const rows: Array<string> = []
const row = (cells: ReadonlyArray<string | number>) => `| ${cells.join(" | ")} |`

afterAll(() =>
  Effect.flatMap(AtomicFile.AtomicFile, (atomic) =>
    reportSection(
      atomic,
      CRASH_SIM,
      "session-storage",
      [
        "### `@intent/session-storage` saves and compactions",
        "",
        "Each crashed tree was opened by a fresh store: `check()` finds no corrupt line, `list()` returns",
        "every acknowledged session (or a later version being saved) and nothing never saved.",
        "",
        row([
          "program",
          "model",
          "FileSystem calls",
          "crash points (distinct)",
          "crash states",
          "trees checked",
          "violations"
        ]),
        row(["---", "---", "---:", "---:", "---:", "---:", "---:"]),
        ...rows
      ].join("\n")
    )).pipe(Effect.provide(AtomicFile.AtomicFile.Default.pipe(Layer.provide(NodeContext.layer))), Effect.runPromise)
)

const scenarios: ReadonlyArray<{
  readonly name: string
  readonly options: Omit<Storage.SessionStorageOptions, "path">
  readonly operations: ReadonlyArray<Operation>
}> = [
  {
    name: "save ×4 (appends; two updates of one id)",
    options: { compactThreshold: false },
    operations: [
      save("a", note("a1", 3000)),
      save("b", note("b1", 2500)),
      save("a", note("a2", 3000)),
      save("a", note("a3", 200))
    ]
  },
  {
    name: "save ×4 with automatic compaction (threshold 1)",
    options: { compactThreshold: 1 },
    operations: [
      save("a", note("a1", 3000)),
      save("b", note("b1", 2500)),
      save("a", note("a2", 3000)),
      save("b", note("b2", 200))
    ]
  },
  {
    name: "save ×3, remove, compact()",
    options: { compactThreshold: false },
    operations: [
      save("a", note("a1", 3000)),
      save("b", note("b1", 2500)),
      save("a", note("a2", 1000)),
      { _tag: "remove", id: "b" },
      { _tag: "compact" }
    ]
  },
  {
    name: "save ×3 with compactEverySave",
    options: { compactEverySave: true },
    operations: [save("a", note("a1", 3000)), save("b", note("b1", 2500)), save("a", note("a2", 3000))]
  }
]

for (const model of ["posix", "ext4-ordered"] as const satisfies ReadonlyArray<CrashModel>) {
  for (const scenario of scenarios) {
    it.effect(`${scenario.name}: no acknowledged session lost, no corrupt line (${model})`, () =>
      Effect.gen(function*() {
        const options = { ...scenario.options, path: FILE }
        const report: CrashCheckReport = yield* checkCrashConsistency(
          program(options, scenario.operations),
          invariant(options),
          { model }
        )
        expect(report.crashPoints).toBeGreaterThan(scenario.operations.length)
        rows.push(row([scenario.name, model, report.calls, report.crashPoints, report.states, report.checked, 0]))
      }))
  }
}

it.effect("the invariant has teeth: a store whose saves are not durable loses an acknowledged session", () =>
  Effect.gen(function*() {
    const options = { compactThreshold: false as const, durability: "none" as const, path: FILE }
    const error = yield* Effect.flip(
      checkCrashConsistency(program(options, [save("a", note("a1", 3000))]), invariant(options))
    )
    expect(error._tag).toBe("CrashViolation")
    if (error._tag === "CrashViolation") {
      expect(error.violation).toMatch(/^session a is missing, acknowledged: "a1:/)
      rows.push(
        row([`expected failure: save with durability "none"`, "posix", "-", "-", "-", "-", `found: ${error.violation}`])
      )
    }
  }))

const recoverySteps: ReadonlyArray<Step> = [
  { phase: "start", id: "z", note: "after the crash" },
  { phase: "done", id: "z", note: "after the crash" }
]
const recoverySave = Effect.flatMap(SessionStorage, (store) => store.save(session("z", "after the crash")))

/** What the recovery save found and did, counted over the crashed trees. */
const recovery = { torn: 0, complete: 0, clean: 0 }

const concat = (...parts: ReadonlyArray<Uint8Array>) => new Uint8Array(Buffer.concat(parts))
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0

/**
 * The next process saves once, and the bytes are checked: a torn fragment at
 * the end of the crashed file is appended verbatim to the sidecar and cut
 * from the file, which then holds its complete lines and the new line, and
 * `check()` is ok; a complete last line without a newline is terminated.
 */
const checkedRecoverySave = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const store = yield* SessionStorage
  const read = (file: string) =>
    Effect.flatMap(fs.exists(file), (exists) => exists ? fs.readFile(file) : Effect.succeed(new Uint8Array(0)))
  const before = yield* read(FILE)
  const sidecarBefore = yield* read(REJECTED)
  const torn = Option.getOrUndefined((yield* store.check()).torn)
  yield* recoverySave
  const record = encodeText(`${Either.getOrThrow(encodeLine(session("z", "after the crash")))}\n`)
  const newline = encodeText("\n")
  const unterminated = (bytes: Uint8Array) => bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a
  let expected: Uint8Array
  let sidecar = sidecarBefore
  if (torn !== undefined) {
    recovery.torn++
    expected = concat(before.subarray(0, torn.offset), record)
    sidecar = concat(
      sidecarBefore,
      unterminated(sidecarBefore) ? newline : new Uint8Array(0),
      before.subarray(torn.offset),
      newline
    )
  } else if (unterminated(before)) {
    recovery.complete++
    expected = concat(before, newline, record)
  } else {
    recovery.clean++
    expected = concat(before, record)
  }
  if (!sameBytes(yield* read(FILE), expected)) return yield* Effect.fail("the store is not its lines + the new one")
  if (!sameBytes(yield* read(REJECTED), sidecar)) return yield* Effect.fail("the sidecar is not as expected")
  const after = yield* store.check()
  if (!after.ok) return yield* Effect.fail(`check() is not ok after the save: ${JSON.stringify(after.torn)}`)
})

it.effect("the first save after a power cut that tore a save moves the fragment to the sidecar: no corrupt line", () =>
  Effect.gen(function*() {
    const options = { compactThreshold: false as const, path: FILE }
    // lines of ~6 KiB: each save can be torn at a 4 KiB boundary
    const operations = [save("a", note("a1", 6000)), save("b", note("b1", 6000))]
    const report = yield* checkCrashConsistency(
      program(options, operations),
      invariant(options, { before: checkedRecoverySave, steps: (acknowledged) => [...acknowledged, ...recoverySteps] })
    )
    // the case happened: some crashed trees ended with a torn fragment
    expect(recovery.torn).toBeGreaterThan(0)
    expect(recovery.clean).toBeGreaterThan(0)
    rows.push(
      row([
        `one save after the crash, then check() (crashed trees ending torn: ${recovery.torn})`,
        "posix",
        report.calls,
        report.crashPoints,
        report.states,
        report.checked,
        0
      ])
    )
  }))

it.effect("a power cut during the save that moves a torn fragment loses neither the fragment nor a session", () =>
  Effect.gen(function*() {
    const options = { compactThreshold: false as const, path: FILE }
    const kept = `${Either.getOrThrow(encodeLine(session("a", "kept")))}\n`
    const fragment = Either.getOrThrow(encodeLine(session("t", note("t1", 3000)))).slice(0, 2000)
    const setup = Effect.flatMap(FileSystem.FileSystem, (fs) =>
      Effect.zipRight(
        fs.makeDirectory("/project/.intent", { recursive: true }),
        fs.writeFileString(FILE, `${kept}${fragment}`)
      ))
    /** the fragment is still at the end of the file, or a line of the sidecar */
    const fragmentKept = Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const text = (file: string) =>
        Effect.flatMap(fs.exists(file), (exists) => exists ? fs.readFileString(file) : Effect.succeed(""))
      const inStore = (yield* text(FILE)).startsWith(`${kept}${fragment}`)
      const inSidecar = (yield* text(REJECTED)).split("\n").includes(fragment)
      if (!inStore && !inSidecar) return yield* Effect.fail("the torn fragment is in neither file")
    })
    for (const model of ["posix", "ext4-ordered"] as const) {
      const report = yield* checkCrashConsistency(
        program(options, [save("z", "after the crash")]),
        invariant(options, {
          before: fragmentKept,
          steps: (acknowledged) => [{ phase: "done", id: "a", note: "kept" }, ...acknowledged]
        }),
        { model, setup }
      )
      expect(report.crashPoints).toBeGreaterThan(3)
      rows.push(
        row([
          "save after a torn fragment (sidecar append, cut, append)",
          model,
          report.calls,
          report.crashPoints,
          report.states,
          report.checked,
          0
        ])
      )
    }
  }))
