/**
 * Property test: any sequence of save / remove / compact / reopen gives the
 * same sessions, in the same order, as a `Map` (where a save moves the key
 * to the end), before and after the file is opened again.
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import fc from "fast-check"
import { SessionStorage } from "../src/SessionStorage.js"
import * as Storage from "../src/SessionStorage.js"
import { session, tempDirectory } from "./support.js"

type Command =
  | { readonly op: "save"; readonly id: string; readonly note: number }
  | { readonly op: "remove"; readonly id: string }
  | { readonly op: "compact" }
  | { readonly op: "reopen" }

const id = fc.constantFrom("a", "b", "c", "d", "e")
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("save" as const), id, note: fc.nat(1000) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("remove" as const), id }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("compact" as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("reopen" as const) }) }
)

const run = (commands: ReadonlyArray<Command>, options: Omit<Storage.SessionStorageOptions, "path">) =>
  Effect.gen(function*() {
    const dir = yield* tempDirectory
    const storeOptions = { ...options, path: `${dir}/sessions.jsonl`, durability: "none" as const }
    const model = new Map<string, string>()
    const open = Effect.provide(SessionStorage, Layer.fresh(Storage.layer(storeOptions)))
    let store = yield* open
    const observe = (current: SessionStorage) =>
      Effect.map(current.list(), (sessions) => sessions.map((s) => [s.id, s.raw_notes] as const))
    for (const c of commands) {
      switch (c.op) {
        case "save":
          yield* store.save(session(c.id, String(c.note)))
          model.delete(c.id)
          model.set(c.id, String(c.note))
          break
        case "remove": {
          const result = yield* Effect.either(store.remove(c.id))
          if (model.has(c.id)) {
            expect(result._tag).toBe("Right")
            model.delete(c.id)
          } else {
            expect(result._tag === "Left" && result.left._tag).toBe("SessionNotFound")
          }
          break
        }
        case "compact":
          yield* store.compact()
          break
        case "reopen":
          store = yield* open
      }
      expect(yield* observe(store)).toEqual([...model.entries()])
    }
    // another store on the same file, as a new process would open it
    expect(yield* observe(yield* open)).toEqual([...model.entries()])
    for (const [key, note] of model) {
      expect((yield* store.get(key)).raw_notes).toBe(note)
    }
    expect((yield* store.check()).ok).toBe(true)
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

const modes: ReadonlyArray<readonly [string, Omit<Storage.SessionStorageOptions, "path">, number]> = [
  ["appending, with frequent automatic compaction", { compactThreshold: 2 }, 40],
  ["appending, compaction only on request", { compactThreshold: false }, 40],
  ["compacting at every save", { compactEverySave: true }, 30]
]

describe("SessionStorage against a Map model", () => {
  for (const [name, options, numRuns] of modes) {
    it(name, async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(command, { maxLength: 30 }), (commands) => Effect.runPromise(run(commands, options))),
        { numRuns }
      )
    }, 120_000)
  }
})
