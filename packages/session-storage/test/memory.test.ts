/**
 * The seams: SessionStorage over an in-memory AtomicFile, FileLock and
 * FileSystem (from `@intent/atomic-file/testing`), without a disk.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as Testing from "@intent/atomic-file/testing"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { SessionStorage } from "../src/SessionStorage.js"
import * as Storage from "../src/SessionStorage.js"
import { fixtureBytes, session } from "./support.js"

const MemoryStore = (options: Storage.SessionStorageOptions) =>
  Layer.provideMerge(Storage.layerWithoutDependencies(options), Testing.layerMemory())

describe("SessionStorage over the in-memory layers", () => {
  it.effect("save, list, get, remove, compact and check, all in memory", () =>
    Effect.gen(function*() {
      const store = yield* SessionStorage
      const fs = yield* FileSystem.FileSystem
      yield* store.save(session("a", "1"))
      yield* store.save(session("b", "1"))
      yield* store.save(session("a", "2"))
      yield* store.remove("b")
      expect((yield* store.list()).map((s) => [s.id, s.raw_notes])).toEqual([["a", "2"]])
      expect(yield* store.compact()).toMatchObject({ rewritten: true, linesBefore: 4, linesAfter: 1 })
      const text = yield* fs.readFileString("/work/.intent/sessions.jsonl")
      expect(text.split("\n").length).toBe(2)
      expect((yield* store.check()).ok).toBe(true)
    }).pipe(Effect.provide(MemoryStore({ path: "/work/.intent/sessions.jsonl" }))))

  it.effect("a fixture of the original tool loads and stays byte-identical", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const original = fixtureBytes("intent-sessions.jsonl")
      yield* fs.makeDirectory("/s", { recursive: true })
      yield* fs.writeFile("/s/sessions.jsonl", original)
      const store = yield* SessionStorage
      expect((yield* store.list()).length).toBe(310)
      expect(yield* store.compact()).toMatchObject({ rewritten: false })
      const after = yield* fs.readFile("/s/sessions.jsonl")
      expect(Buffer.compare(Buffer.from(after), Buffer.from(original))).toBe(0)
    }).pipe(Effect.provide(MemoryStore({ path: "/s/sessions.jsonl" }))))
})
