import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { liveMemory } from "../../../test-support/liveMemory.js"
import { encodeLine, type InterviewSession } from "../src/InterviewSession.js"
import { SessionStorage } from "../src/SessionStorage.js"
import { formatError } from "../src/SessionStorageError.js"
import { fixtureBytes, FIXTURES, readBytes, readText, session, tempDirectory, withStore } from "./support.js"

const decoder = new TextDecoder()

/** The line a save writes for `s`. */
const line = (s: InterviewSession) => Either.getOrThrow(encodeLine(s))
const ids = (sessions: ReadonlyArray<InterviewSession>) => sessions.map((s) => s.id)

const scoped = <A, E>(effect: Effect.Effect<A, E, NodeContext.NodeContext | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeContext.layer))

describe("SessionStorage on the original tool's files", () => {
  for (const [name, { sessions }] of Object.entries(FIXTURES)) {
    it.effect(`${name}: ${sessions} sessions load; compact and check change nothing`, () =>
      scoped(Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        const file = `${dir}/sessions.jsonl`
        const original = fixtureBytes(name)
        yield* fs.writeFile(file, original)
        yield* withStore({ path: file }, (store) =>
          Effect.gen(function*() {
            const all = yield* store.list()
            expect(all.length).toBe(sessions)
            expect(new Set(ids(all)).size).toBe(sessions)
            const first = all[0]
            assert.isDefined(first)
            expect(yield* store.get(first.id)).toEqual(first)
            const report = yield* store.check()
            expect(report).toMatchObject({ ok: true, sessions, records: sessions, superseded: 0, lines: sessions })
            expect(yield* store.compact()).toMatchObject({ rewritten: false })
          }))
        // byte for byte what the original tool wrote, trailing newline or not
        expect(Buffer.compare(Buffer.from(yield* readBytes(file)), Buffer.from(original))).toBe(0)
        // only the lock file was added beside it (see the README)
        expect((yield* fs.readDirectory(dir)).sort()).toEqual(["sessions.jsonl", "sessions.jsonl.lock"])
      })))
  }

  it.effect("saving one session changes only that session's line", () =>
    scoped(Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      const file = `${dir}/sessions.jsonl`
      const original = decoder.decode(fixtureBytes("intent-sessions.jsonl"))
      yield* fs.writeFileString(file, original)
      const lines = original.split("\n")
      const target = lines[100] ?? ""
      const id = (JSON.parse(target) as { id: string }).id
      yield* withStore({ path: file }, (store) =>
        Effect.gen(function*() {
          const before = yield* store.get(id)
          yield* store.save({ ...before, stage: "complete", rounds_completed: 3 })
          // appended: the original bytes are untouched, plus one line
          const appended = yield* readText(file)
          expect(appended.startsWith(`${original}\n`)).toBe(true)
          expect(appended.slice(original.length + 1).split("\n").length).toBe(2)
          yield* store.compact()
        }))
      const compacted = (yield* readText(file)).split("\n")
      expect(compacted.pop()).toBe("")
      const expectedOthers = lines.filter((_, i) => i !== 100)
      expect(compacted.slice(0, -1)).toEqual(expectedOthers)
      const changed = compacted.at(-1) ?? ""
      expect(changed).toBe(
        target.replace(`"stage":"discovery"`, `"stage":"complete"`).replace(
          `"rounds_completed":0`,
          `"rounds_completed":3`
        )
      )
    })))
})

describe("SessionStorage basics", () => {
  it.effect("save, get, list in order of last save, remove, and not found", () =>
    scoped(Effect.gen(function*() {
      const dir = yield* tempDirectory
      yield* withStore({ path: `${dir}/.intent/sessions.jsonl` }, (store) =>
        Effect.gen(function*() {
          expect(yield* store.list()).toEqual([])
          yield* store.save(session("a", "1"))
          yield* store.save(session("b", "1"))
          yield* store.save(session("c", "1"))
          yield* store.save(session("a", "2"))
          expect(ids(yield* store.list())).toEqual(["b", "c", "a"])
          expect((yield* store.get("a")).raw_notes).toBe("2")
          yield* store.remove("b")
          expect(ids(yield* store.list())).toEqual(["c", "a"])
          const missing = yield* Effect.flip(store.get("b"))
          expect(missing._tag).toBe("SessionNotFound")
          expect(formatError(missing)).toContain(`no session "b"`)
          expect((yield* Effect.flip(store.remove("zzz")))._tag).toBe("SessionNotFound")
          const report = yield* store.compact()
          expect(report).toMatchObject({ rewritten: true, linesBefore: 5, linesAfter: 2, rejected: 0 })
        }))
      // a new store on the same file (as another process) sees the same
      yield* withStore({ path: `${dir}/.intent/sessions.jsonl` }, (store) =>
        Effect.gen(function*() {
          expect(ids(yield* store.list())).toEqual(["c", "a"])
          expect(yield* store.compact()).toMatchObject({ rewritten: false })
        }))
      const text = yield* readText(`${dir}/.intent/sessions.jsonl`)
      expect(text.split("\n").length).toBe(3)
    })))

  it.effect("invalid sessions and limits: InvalidSession, nothing written", () =>
    scoped(Effect.gen(function*() {
      const dir = yield* tempDirectory
      const file = `${dir}/sessions.jsonl`
      yield* withStore({ path: file, maxLineBytes: 4096 }, (store) =>
        Effect.gen(function*() {
          yield* store.save(session("keep"))
          const cases: ReadonlyArray<readonly [InterviewSession, string]> = [
            [session(""), "the id is empty"],
            [session("x".repeat(1024 * 1024)), "more than the limit of 256"],
            [{ ...session("s"), stage: "Finished" as never }, "stage"],
            [{ ...session("s"), created_at: "26/01/2026" }, "ISO 8601"],
            [session("big", "n".repeat(5000)), "more than the line limit of 4096"]
          ]
          for (const [bad, message] of cases) {
            const error = yield* Effect.flip(store.save(bad))
            assert.strictEqual(error._tag, "InvalidSession")
            expect(formatError(error)).toContain(message)
          }
        }))
      expect((yield* readText(file)).split("\n").length).toBe(2)
    })))

  it.effect("maxIdLength lowers the id limit", () =>
    scoped(Effect.gen(function*() {
      const dir = yield* tempDirectory
      yield* withStore({ path: `${dir}/s.jsonl`, maxIdLength: 8 }, (store) =>
        Effect.gen(function*() {
          yield* store.save(session("12345678"))
          const error = yield* Effect.flip(store.save(session("123456789")))
          expect(error._tag).toBe("InvalidSession")
        }))
    })))

  it.effect("maxFileBytes bounds what a compaction reads: StorageFailure(FileTooLarge), file unchanged", () =>
    scoped(Effect.gen(function*() {
      const dir = yield* tempDirectory
      const file = `${dir}/s.jsonl`
      yield* withStore({ path: file, maxFileBytes: 100, compactThreshold: false }, (store) =>
        Effect.gen(function*() {
          yield* store.save(session("a", "1"))
          yield* store.save(session("a", "2"))
          yield* store.save(session("a", "3"))
          const before = yield* readText(file)
          const error = yield* Effect.flip(store.compact())
          assert.strictEqual(error._tag, "StorageFailure")
          if (error._tag === "StorageFailure") {
            expect(error.cause._tag).toBe("FileTooLarge")
            expect(formatError(error)).toContain("allowed in memory")
          }
          expect(yield* readText(file)).toBe(before)
        }))
    })))

  it.effect("a compaction is due once dead lines pass the threshold and outnumber live ones", () =>
    scoped(Effect.gen(function*() {
      const dir = yield* tempDirectory
      const file = `${dir}/s.jsonl`
      yield* withStore({ path: file, compactThreshold: 10, durability: "none" }, (store) =>
        Effect.gen(function*() {
          for (let i = 0; i < 5; i++) yield* store.save(session(`live-${i}`))
          for (let i = 0; i < 9; i++) yield* store.save(session("hot", String(i)))
          // 8 dead lines so far: below the threshold
          expect((yield* readText(file)).split("\n").length - 1).toBe(14)
          yield* store.save(session("hot", "9"))
          yield* store.save(session("hot", "10"))
          // the 10th dead line triggered a compaction to one line per session
          expect((yield* readText(file)).split("\n").length - 1).toBe(6)
          expect((yield* store.get("hot")).raw_notes).toBe("10")
        }))
    })))

  it.effect("compactEverySave keeps the file compact at all times", () =>
    scoped(Effect.gen(function*() {
      const dir = yield* tempDirectory
      const file = `${dir}/s.jsonl`
      yield* withStore({ path: file, compactEverySave: true }, (store) =>
        Effect.gen(function*() {
          yield* store.save(session("a"))
          yield* store.save(session("b"))
          yield* store.save(session("a", "again"))
          yield* store.remove("b")
          const lines = (yield* readText(file)).split("\n")
          expect(lines.length).toBe(2)
          expect(JSON.parse(lines[0] ?? "")).toMatchObject({ id: "a", raw_notes: "again" })
          expect((yield* store.check()).superseded).toBe(0)
        }))
    })))
})

describe("SessionStorage with damaged files", () => {
  const good = (id: string, note = "") => JSON.stringify(session(id, note))

  it.effect(
    "corrupt lines, duplicates, a 10 MB line, a 1 MB id and a torn last line: reported, nothing lost",
    () =>
      scoped(Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        const file = `${dir}/sessions.jsonl`
        const huge = `{"id":"huge","raw_notes":"${"h".repeat(10 * 1024 * 1024)}"}`
        const longId = JSON.stringify(session("i".repeat(1_000_000)))
        const lines = [
          good("a", "1"), // 1
          "{this is not json", // 2
          good("b"), // 3
          `{"id":"c","profile":"api"}`, // 4: breaks the schema
          huge, // 5: over the line limit
          good("a", "2"), // 6: duplicate id, the later wins
          longId, // 7: id over the limit
          "", // 8: blank
          good("d") // 9
        ]
        const torn = good("e").slice(0, 40) // 10: an interrupted write
        const original = `${lines.join("\n")}\n${torn}`
        yield* fs.writeFileString(file, original)

        yield* withStore({ path: file }, (store) =>
          Effect.gen(function*() {
            expect(ids(yield* store.list())).toEqual(["b", "a", "d"])
            expect((yield* store.get("a")).raw_notes).toBe("2")
            const report = yield* store.check()
            expect(report.ok).toBe(false)
            expect(report.corrupt.map((p) => p.line)).toEqual([2, 4, 5, 7])
            expect(report.corrupt[2]?.problem).toContain("more than the limit")
            expect(report.corrupt[3]?.problem).toContain("id")
            expect(Option.map(report.torn, (p) => p.line)).toEqual(Option.some(10))
            expect(report.duplicates).toEqual([{ id: "a", count: 2, lines: [1, 6] }])
            expect(report).toMatchObject({ sessions: 3, records: 4, superseded: 1, blank: 1, lines: 10 })

            // saving moves the torn fragment to the sidecar, cuts it, then appends
            yield* store.save(session("f"))
            expect(yield* readText(file)).toBe(`${lines.join("\n")}\n${line(session("f"))}\n`)
            expect(yield* readText(`${file}.rejected`)).toBe(`${torn}\n`)

            const compaction = yield* store.compact()
            expect(compaction).toMatchObject({ rewritten: true, rejected: 4 })
          }))

        // the main file: one line per live session, in order of last save
        const main = (yield* readText(file)).split("\n")
        expect(main.map((line) => line === "" ? "" : (JSON.parse(line) as { id: string }).id)).toEqual([
          "b",
          "a",
          "d",
          "f",
          ""
        ])
        // the sidecar holds every rejected line verbatim, the 10 MB one included
        const rejected = (yield* readText(`${file}.rejected`)).split("\n")
        expect(rejected).toEqual([torn, "{this is not json", `{"id":"c","profile":"api"}`, huge, longId, ""])

        yield* withStore({ path: file }, (store) =>
          Effect.gen(function*() {
            const report = yield* store.check()
            expect(report).toMatchObject({ ok: true, sessions: 4, rejected: 5 })
          }))
      })),
    60_000
  )

  it.effect("strict: lines that are not sessions fail every operation with CorruptStore, and nothing moves", () =>
    scoped(Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      const file = `${dir}/sessions.jsonl`
      const original = `${good("a")}\nnot json\n${good("b")}\n`
      yield* fs.writeFileString(file, original)
      yield* withStore({ path: file, strict: true }, (store) =>
        Effect.gen(function*() {
          for (const operation of [store.list(), store.get("a"), store.save(session("c")), store.compact()]) {
            const error = yield* Effect.flip(operation as Effect.Effect<unknown, { readonly _tag: string }>)
            expect(error._tag).toBe("CorruptStore")
          }
          const error = yield* Effect.flip(store.compact())
          assert.strictEqual(error._tag, "CorruptStore")
          if (error._tag === "CorruptStore") expect(error.problems.map((p) => p.line)).toEqual([2])
        }))
      expect(yield* readText(file)).toBe(original)
      expect(yield* fs.exists(`${file}.rejected`)).toBe(false)
    })))

  it.effect("a save or remove after a power cut that tore a save moves the fragment to the sidecar: check() stays ok", () =>
    scoped(Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      const file = `${dir}/sessions.jsonl`
      const sidecar = `${file}.rejected`
      const complete = `${good("a")}\n${good("b")}\n`
      const torn = line(session("c", "lost")).slice(0, 30)
      yield* fs.writeFileString(file, `${complete}${torn}`)
      yield* withStore({ path: file, compactThreshold: false }, (store) =>
        Effect.gen(function*() {
          yield* store.save(session("d"))
          expect(yield* readText(file)).toBe(`${complete}${line(session("d"))}\n`)
          expect(yield* readText(sidecar)).toBe(`${torn}\n`)
          expect(yield* store.check()).toMatchObject({ ok: true, sessions: 3, lines: 3, rejected: 1 })
          expect(ids(yield* store.list())).toEqual(["a", "b", "d"])
        }))
      // a second power cut tears a removal (of "b")
      yield* fs.writeFileString(file, `${complete}${line(session("d"))}\n{"$deleted":"`)
      yield* withStore({ path: file, compactThreshold: false }, (store) =>
        Effect.gen(function*() {
          yield* store.remove("a")
          expect(yield* readText(file)).toBe(`${complete}${line(session("d"))}\n{"$deleted":"a"}\n`)
          expect(yield* readText(sidecar)).toBe(`${torn}\n{"$deleted":"\n`)
          expect(yield* store.check()).toMatchObject({ ok: true, sessions: 2, removals: 1, rejected: 2 })
        }))
    })))

  it.effect("a file written by the original tool, with no final newline, takes a save without losing its last line", () =>
    scoped(Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      const file = `${dir}/sessions.jsonl`
      yield* fs.writeFileString(file, `${good("a")}\n${good("b")}`)
      yield* withStore({ path: file }, (store) =>
        Effect.gen(function*() {
          expect(ids(yield* store.list())).toEqual(["a", "b"])
          yield* store.save(session("c"))
          expect(ids(yield* store.list())).toEqual(["a", "b", "c"])
          expect((yield* store.check()).ok).toBe(true)
        }))
      // terminated, not moved: the last line was complete
      expect(yield* readText(file)).toBe(`${good("a")}\n${good("b")}\n${line(session("c"))}\n`)
      expect(yield* fs.exists(`${file}.rejected`)).toBe(false)
    })))
})

describe("SessionStorage memory", () => {
  it.effect(
    "stream() and check() read a 32 MB store without holding it in memory",
    () =>
      scoped(Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        const file = `${dir}/big.jsonl`
        // 32 MiB of lines for 100 ids: the live sessions are a small part
        const lines = Array.from({ length: 100 }, (_, i) => JSON.stringify(session(`id-${i}`, "x".repeat(900))))
        const block = new TextEncoder().encode(`${lines.join("\n")}\n`)
        const copies = Math.ceil((32 * 1024 * 1024) / block.length)
        yield* Effect.scoped(Effect.gen(function*() {
          const handle = yield* fs.open(file, { flag: "w" })
          for (let i = 0; i < copies; i++) yield* handle.writeAll(block)
        }))
        // live memory (after a full collection), Buffers included, sampled
        // while the store reads: a store that held the file would show 32 MB
        const baseline = liveMemory()
        let peak = baseline
        const sampler = setInterval(() => {
          peak = Math.max(peak, liveMemory())
        }, 1000)
        const [count, report] = yield* withStore(
          { path: file },
          (store) => Effect.all([Effect.map(Stream.runCount(store.stream()), Number), store.check()])
        ).pipe(
          Effect.ensuring(Effect.sync(() => clearInterval(sampler)))
        )
        expect(count).toBe(100)
        expect(report).toMatchObject({ ok: true, sessions: 100, records: copies * 100 })
        peak = Math.max(peak, liveMemory())
        expect(peak - baseline).toBeLessThan(12 * 1024 * 1024)
      })),
    120_000
  )
})

describe("SessionStorage.Default", () => {
  it.effect("reads its path from INTENT_SESSIONS_FILE", () =>
    scoped(Effect.gen(function*() {
      const dir = yield* tempDirectory
      const file = `${dir}/from-env.jsonl`
      const { ConfigProvider, Layer } = yield* Effect.promise(() => import("effect"))
      yield* Effect.flatMap(SessionStorage, (store) =>
        Effect.gen(function*() {
          expect(store.path).toBe(file)
          yield* store.save(session("env"))
        })).pipe(
          Effect.provide(SessionStorage.Default),
          Effect.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["INTENT_SESSIONS_FILE", file]]))))
        )
      expect(JSON.parse(yield* readText(file))).toMatchObject({ id: "env" })
    })))
})
