/**
 * A row whose text is not a session (edited by hand, outside the store):
 * `check` reports it, `list` and `stream` skip it, or fail with
 * `CorruptStore` under `strict`, and `get` of it fails with `CorruptStore`.
 * The file store's counterpart is its corrupt-line tests.
 */
import { describe, expect, it } from "@effect/vitest"
import { SessionStorage } from "@intent/session-storage"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { Backend } from "./backends.js"
import { isCI, pgBackend, probePg, sqliteBackend } from "./backends.js"
import { session } from "./contract.js"

const suite = (backend: Backend) =>
  it.scopedLive(`${backend.kind}: check reports the row; list and stream skip it, or fail when strict; get fails`, () =>
    Effect.gen(function*() {
      const place = yield* backend.place
      yield* Effect.provide(
        Effect.gen(function*() {
          const store = yield* SessionStorage.SessionStorage
          for (const id of ["a", "b", "c"]) yield* store.save(session(id))
        }),
        place.client()
      )
      // a torn edit: the JSON does not even parse
      if (place.overwrite === undefined) return yield* Effect.dieMessage("a database backend overwrites rows")
      yield* place.overwrite("b", `{"id":"b"`)
      yield* Effect.provide(
        Effect.gen(function*() {
          const store = yield* SessionStorage.SessionStorage
          const report = yield* store.check()
          expect(report).toMatchObject({ ok: false, lines: 3, sessions: 2 })
          expect(report.corrupt.map((p) => [p.line, p.problem.slice(0, 12)])).toEqual([[2, `row "b": not`]])
          expect((yield* store.list()).map((s) => s.id)).toEqual(["a", "c"])
          expect(Array.from(yield* Stream.runCollect(store.stream()), (s) => s.id)).toEqual(["a", "c"])
          expect((yield* Effect.flip(store.get("b")))._tag).toBe("CorruptStore")
        }),
        place.client()
      )
      yield* Effect.provide(
        Effect.gen(function*() {
          const store = yield* SessionStorage.SessionStorage
          expect((yield* Effect.flip(store.list()))._tag).toBe("CorruptStore")
          expect((yield* Effect.flip(Stream.runCollect(store.stream())))._tag).toBe("CorruptStore")
          // a save replaces the broken row
          yield* store.save(session("b", "mended"))
          expect((yield* store.list()).map((s) => s.id)).toEqual(["a", "c", "b"])
        }),
        place.client({ strict: true })
      )
    }))

describe("rows that are not sessions", () => {
  suite(sqliteBackend)
})

const server = await probePg()

describe("rows that are not sessions on PostgreSQL", () => {
  if (!server.ok && !isCI) {
    it.skip(`skipped: ${server.reason}`, () => undefined)
    return
  }
  suite(pgBackend)
})
