/**
 * `stream()` on a database reads in bounded memory: a PostgreSQL cursor, or
 * SQLite pages. 3,000 sessions of 20 KB (60 MB of text, more as strings)
 * stream through while live memory stays far below what `list()` holds.
 */
import { describe, expect, it } from "@effect/vitest"
import { SessionStorage } from "@intent/session-storage"
import { InterviewSession } from "@intent/session-storage"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { liveMemory } from "../../../test-support/liveMemory.js"
import type { Backend } from "./backends.js"
import { isCI, pgBackend, probePg, sqliteBackend } from "./backends.js"
import { session } from "./contract.js"

const COUNT = 3000
const NOTE_BYTES = 20_000

const suite = (backend: Backend) =>
  it.scopedLive(
    `${backend.kind}: stream() of ${COUNT} sessions of 20 KB keeps live memory under 16 MB`,
    () =>
      Effect.gen(function*() {
        const place = yield* backend.place
        if (place.fill === undefined) return yield* Effect.dieMessage("a database backend fills in one statement")
        yield* Effect.provide(SessionStorage.SessionStorage, place.client())
        const template = Either.getOrThrow(InterviewSession.encodeLine(session("ID", "n".repeat(NOTE_BYTES))))
        yield* place.fill(COUNT, template)
        const baseline = liveMemory()
        let peak = baseline
        let seen = 0
        yield* Effect.provide(
          Effect.flatMap(SessionStorage.SessionStorage, (store) =>
            Stream.runForEach(store.stream(), (s) =>
              Effect.sync(() => {
                seen++
                if (s.raw_notes.length !== NOTE_BYTES) throw new Error(`${s.id}: notes cut`)
                if (seen % 250 === 0) {
                  peak = Math.max(peak, liveMemory())
                }
              }))),
          place.client()
        )
        expect(seen).toBe(COUNT)
        // holding them all (as list() does) would take more than 60 MB
        expect(peak - baseline).toBeLessThan(16 * 1024 * 1024)
      }),
    180_000
  )

describe("stream memory", () => {
  suite(sqliteBackend)
})

const server = await probePg()

describe("stream memory on PostgreSQL", () => {
  if (!server.ok && !isCI) {
    it.skip(`skipped: ${server.reason}`, () => undefined)
    return
  }
  suite(pgBackend)
})
