/**
 * The contract of `SessionStorage`, one suite for every backend: what the
 * file store promises, checked the same way on SQLite and PostgreSQL. Where
 * a backend cannot keep a promise, the test says which and checks what it
 * does instead.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { InterviewSession, SessionStorage, SessionStorageError } from "@intent/session-storage"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { Backend } from "./backends.js"

export const FIXTURES = ["intent-sessions.jsonl", "interview-sessions.jsonl", "interview-test-session.jsonl"] as const

/** The lines of a fixture of the original tool, as written. */
export const fixtureLines = (name: string): Array<string> =>
  readFileSync(
    fileURLToPath(new URL(`../../session-storage/test/fixtures/${name}`, import.meta.url)),
    "utf8"
  ).split("\n").filter((line) => line.length > 0)

const decode = (line: string): InterviewSession.InterviewSession => {
  const decoded = InterviewSession.decodeLine(line)
  if (Either.isLeft(decoded)) throw new Error(decoded.left)
  return decoded.right
}

const base = decode(fixtureLines("interview-sessions.jsonl")[0] ?? "")

/** A valid session with this id; `note` goes into raw_notes. */
export const session = (id: string, note = ""): InterviewSession.InterviewSession => ({
  ...base,
  id,
  raw_notes: note,
  answers: [],
  gaps: [],
  conflicts: []
})

const text = (session: InterviewSession.InterviewSession) => Either.getOrThrow(InterviewSession.encodeLine(session))
const ids = (sessions: ReadonlyArray<InterviewSession.InterviewSession>) => sessions.map((s) => s.id)

/** Runs `body` on a client of the store `layer` builds. */
const using = <A, E>(
  layer: Layer.Layer<SessionStorage.SessionStorage, SessionStorageError.StorageFailure>,
  body: (store: SessionStorage.SessionStorage) => Effect.Effect<A, E>
) => Effect.provide(Effect.flatMap(SessionStorage.SessionStorage, body), layer)

export const contract = (backend: Backend) => {
  const { kind } = backend

  describe(`SessionStorage contract on ${kind}`, () => {
    it.scopedLive("save, get, list in order of last save, remove, not found; another client sees the same", () =>
      Effect.gen(function*() {
        const place = yield* backend.place
        yield* using(place.client(), (store) =>
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
            assert.strictEqual(missing._tag, "SessionNotFound")
            expect(SessionStorageError.formatError(missing)).toContain(`no session "b"`)
            expect((yield* Effect.flip(store.remove("zzz")))._tag).toBe("SessionNotFound")
            // a removed session saved again comes last
            yield* store.save(session("b", "3"))
            expect(ids(yield* store.list())).toEqual(["c", "a", "b"])
          }))
        yield* using(place.client(), (store) =>
          Effect.gen(function*() {
            expect(ids(yield* store.list())).toEqual(["c", "a", "b"])
            expect((yield* store.get("b")).raw_notes).toBe("3")
            const report = yield* store.check()
            expect(report).toMatchObject({ ok: true, sessions: 3, corrupt: [] })
          }))
      }))

    for (const name of FIXTURES) {
      it.scopedLive(`${name}: every session reads back byte-identical, unknown keys included, in save order`, () =>
        Effect.gen(function*() {
          const lines = fixtureLines(name)
          const place = yield* backend.place
          yield* using(
            place.client(),
            (store) => Effect.forEach(lines, (line) => store.save(decode(line)), { discard: true })
          )
          yield* using(place.client(), (store) =>
            Effect.gen(function*() {
              const listed = yield* store.list()
              expect(listed.map(text)).toEqual(lines)
              const streamed = yield* Stream.runCollect(store.stream())
              expect(Array.from(streamed, text)).toEqual(lines)
              // the stored text itself, not only what reads back
              const stored = yield* place.stored
              expect(stored.size).toBe(lines.length)
              for (const line of lines) expect(stored.get(decode(line).id)).toBe(line)
              for (const line of [lines[0], lines[lines.length - 1]]) {
                assert.isDefined(line)
                expect(text(yield* store.get(decode(line).id))).toBe(line)
              }
            }))
        }))
    }

    it.scopedLive("invalid sessions and limits: InvalidSession with the reason, nothing saved", () =>
      Effect.gen(function*() {
        const place = yield* backend.place
        yield* using(place.client({ maxBytes: 4096 }), (store) =>
          Effect.gen(function*() {
            yield* store.save(session("keep"))
            const cases: ReadonlyArray<readonly [InterviewSession.InterviewSession, string]> = [
              [session(""), "the id is empty"],
              [session("x".repeat(1024 * 1024)), "more than the limit of 256"],
              [{ ...session("s"), stage: "Finished" as never }, "stage"],
              [{ ...session("s"), created_at: "26/01/2026" }, "ISO 8601"],
              [session("big", "n".repeat(5000)), "more than the line limit of 4096"]
            ]
            for (const [bad, message] of cases) {
              const error = yield* Effect.flip(store.save(bad))
              assert.strictEqual(error._tag, "InvalidSession")
              expect(SessionStorageError.formatError(error)).toContain(message)
            }
            expect(ids(yield* store.list())).toEqual(["keep"])
          }))
      }))

    it.scopedLive("maxIdLength lowers the id limit", () =>
      Effect.gen(function*() {
        const place = yield* backend.place
        yield* using(place.client({ maxIdLength: 8 }), (store) =>
          Effect.gen(function*() {
            yield* store.save(session("12345678"))
            const error = yield* Effect.flip(store.save(session("123456789")))
            assert.strictEqual(error._tag, "InvalidSession")
            expect(ids(yield* store.list())).toEqual(["12345678"])
          }))
      }))

    it.scopedLive("ids and notes in any script survive, byte for byte", () =>
      Effect.gen(function*() {
        const place = yield* backend.place
        const odd: Array<InterviewSession.InterviewSession> = [
          session("ünïcødé-🙂", "line\nbreak \"quoted\" \\ back\tslash \u0001 \u2028"),
          session("'; DROP TABLE x; --", "{\"$deleted\":\"a\"}"),
          session("%_*?", "\u00e9\u0301 NFC and NFD")
        ]
        // a whole confidence is written as a float (1.0), as the original tool needs it
        const rich = decode(fixtureLines("intent-sessions.jsonl")[0] ?? "")
        const answer = rich.answers[0]
        assert.isDefined(answer)
        odd.push({ ...rich, id: "whole-confidence", answers: [{ ...answer, confidence: 1 }] })
        yield* using(place.client(), (store) => Effect.forEach(odd, store.save, { discard: true }))
        yield* using(place.client(), (store) =>
          Effect.gen(function*() {
            expect((yield* store.list()).map(text)).toEqual(odd.map(text))
            for (const s of odd) expect(text(yield* store.get(s.id))).toBe(text(s))
            expect(text(yield* store.get("whole-confidence"))).toContain(`"confidence":1.0,`)
          }))
        const stored = yield* place.stored
        for (const s of odd) expect(stored.get(s.id)).toBe(text(s))
      }))

    it.scopedLive("concurrent clients: no save is lost, one version of a contended id wins, no duplicate", () =>
      Effect.gen(function*() {
        const place = yield* backend.place
        const clients = 4
        const each = 15
        yield* Effect.forEach(
          Array.from({ length: clients }, (_, c) => c),
          (c) =>
            using(place.client(), (store) =>
              Effect.forEach(
                Array.from({ length: each }, (_, i) => i),
                (i) =>
                  Effect.zipRight(
                    store.save(session(`c${c}-${i}`, `from ${c}`)),
                    store.save(session("contended", `client ${c} save ${i}`))
                  ),
                { concurrency: 3, discard: true }
              )),
          { concurrency: "unbounded", discard: true }
        )
        yield* using(place.client(), (store) =>
          Effect.gen(function*() {
            const all = yield* store.list()
            expect(all.length).toBe(clients * each + 1)
            expect(new Set(ids(all)).size).toBe(all.length)
            for (let c = 0; c < clients; c++) {
              for (let i = 0; i < each; i++) expect((yield* store.get(`c${c}-${i}`)).raw_notes).toBe(`from ${c}`)
            }
            expect((yield* store.get("contended")).raw_notes).toMatch(/^client [0-3] save \d+$/)
          }))
      }))

    it.scopedLive("last-save order holds across clients", () =>
      Effect.gen(function*() {
        const place = yield* backend.place
        yield* using(place.client(), (store) => store.save(session("x")))
        yield* using(place.client(), (store) => store.save(session("y")))
        yield* using(place.client(), (store) => store.save(session("x", "again")))
        yield* using(place.client(), (store) =>
          Effect.gen(function*() {
            expect(ids(yield* store.list())).toEqual(["y", "x"])
          }))
      }))

    it.scopedLive(
      kind === "sqlite"
        ? "stream while a session is saved again: SQLite pages without a snapshot, so it shows again at its new place"
        : "stream while a session is saved again: the stream reads one snapshot, each session once",
      () =>
        Effect.gen(function*() {
          const place = yield* backend.place
          yield* using(place.client(), (store) =>
            Effect.gen(function*() {
              for (const id of ["a", "b", "c", "d"]) yield* store.save(session(id, "old"))
              const pull = yield* Stream.toPull(Stream.rechunk(store.stream(), 1))
              const first = yield* pull
              expect(Array.from(first, (s) => s.id)).toEqual(["a"])
              yield* store.save(session("a", "new"))
              const rest: Array<InterviewSession.InterviewSession> = []
              while (true) {
                const next = yield* Effect.either(pull)
                if (Either.isLeft(next)) break
                rest.push(...next.right)
              }
              if (kind === "sqlite") {
                expect(rest.map((s) => `${s.id}:${s.raw_notes}`)).toEqual(["b:old", "c:old", "d:old", "a:new"])
              } else {
                expect(rest.map((s) => `${s.id}:${s.raw_notes}`)).toEqual(["b:old", "c:old", "d:old"])
              }
              expect(ids(yield* store.list())).toEqual(["b", "c", "d", "a"])
            }).pipe(Effect.scoped))
        })
    )

    it.scopedLive(
      kind === "file"
        ? "compact rewrites the file to one line per session"
        : "compact is a no-op on a database, and says so",
      () =>
        Effect.gen(function*() {
          const place = yield* backend.place
          yield* using(place.client(), (store) =>
            Effect.gen(function*() {
              yield* store.save(session("a"))
              yield* store.save(session("a", "2"))
              yield* store.save(session("b"))
              const report = yield* store.compact()
              if (kind === "file") {
                expect(report).toMatchObject({ rewritten: true, linesBefore: 3, linesAfter: 2 })
              } else {
                expect(report).toMatchObject({ rewritten: false, linesBefore: 2, linesAfter: 2, rejected: 0 })
                expect(report.note).toContain("always compact")
              }
              expect(ids(yield* store.list())).toEqual(["a", "b"])
              expect(yield* store.check()).toMatchObject({ ok: true, sessions: 2 })
            }))
        })
    )
  })
}
