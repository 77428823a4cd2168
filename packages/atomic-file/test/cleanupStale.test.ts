import * as FileSystem from "@effect/platform/FileSystem"
import { assert, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { AtomicFile } from "../src/AtomicFile.js"
import { kill, requireBuild, spawnScript } from "./childProcess.js"
import { listTree, LiveLayer, readText, tempDirectory } from "./support.js"

// No process can have this pid: Linux caps pid_max at 2^22.
const DEAD_PID = 9_999_999

/**
 * Starts a child process that begins an atomic write of `target` and stops in
 * the middle (its stream never ends), then kills it with SIGKILL once it said
 * it is mid-write: a writer that crashed and left its temporary file.
 */
const crashWriterMidWrite = (target: string) =>
  Effect.gen(function*() {
    const child = yield* spawnScript(
      `
      import { NodeContext } from "@effect/platform-node"
      import { Effect, Stream } from "effect"
      import { AtomicFile } from DIST
      const stream = Stream.make(new Uint8Array(4096).fill(66)).pipe(
        Stream.concat(Stream.fromEffect(Effect.sync(() => process.stdout.write("mid-write\\n"))).pipe(Stream.drain)),
        Stream.concat(Stream.never)
      )
      Effect.flatMap(AtomicFile.AtomicFile, (atomic) => atomic.writeStream(process.argv[1], stream)).pipe(
        Effect.provide(AtomicFile.AtomicFile.Default),
        Effect.provide(NodeContext.layer),
        Effect.runPromise
      )
    `,
      [target]
    )
    yield* child.waitForLine((line) => line === "mid-write")
    const exit = yield* kill(child)
    expect(exit.signal).toBe("SIGKILL")
  }).pipe(Effect.scoped)

layer(LiveLayer)("cleanupStale", (it) => {
  it.scoped("removes the temp file of a writer killed mid-write, and nothing else", () =>
    Effect.gen(function*() {
      yield* requireBuild
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.writeFileString(`${dir}/data.json`, "old")
      yield* crashWriterMidWrite(`${dir}/data.json`)
      const before = yield* listTree(dir)
      expect(before.length).toBe(2)
      const leftover = before.find((name) => name !== "data.json")
      assert.isDefined(leftover)
      expect(leftover).toMatch(/^\.data\.json~\d+-[0-9a-f]{16}#atomic-tmp$/)
      expect(yield* readText(`${dir}/data.json`)).toBe("old")

      const report = yield* atomic.cleanupStale(dir)
      expect(report.removed).toEqual([`${dir}/${leftover}`])
      expect(report.kept).toEqual([])
      expect(yield* listTree(dir)).toEqual(["data.json"])
      expect(yield* readText(`${dir}/data.json`)).toBe("old")
    }))

  it.scoped("touches only its own names: keeps live writers' files, other files, links and directories", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      const stale = `.s.jsonl~${DEAD_PID}-0123456789abcdef#atomic-tmp`
      const live = `.s.jsonl~${process.pid}-0123456789abcdef#atomic-tmp`
      const others = [
        "s.jsonl",
        ".s.jsonl.tmp",
        `s.jsonl~${DEAD_PID}-0123456789abcdef#atomic-tmp`,
        `.s.jsonl~${DEAD_PID}-0123456789abcdef#atomic-tmp.bak`
      ]
      for (const name of [stale, live, ...others]) yield* fs.writeFileString(`${dir}/${name}`, name)
      const staleDir = `.d~${DEAD_PID}-0123456789abcdef#atomic-tmp`
      const staleLink = `.l~${DEAD_PID}-0123456789abcdef#atomic-tmp`
      yield* fs.makeDirectory(`${dir}/${staleDir}`)
      yield* fs.symlink("s.jsonl", `${dir}/${staleLink}`)

      const report = yield* atomic.cleanupStale(dir)
      expect(report.removed).toEqual([`${dir}/${stale}`])
      expect(report.kept).toEqual([`${dir}/${live}`])
      expect(yield* listTree(dir)).toEqual([live, ...others, staleDir, staleLink].sort())
      expect(yield* readText(`${dir}/s.jsonl`)).toBe("s.jsonl")
    }))

  it.scoped("a missing directory is a CleanupFailure(NotFound); an empty path is InvalidInput", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      const error = yield* Effect.flip(atomic.cleanupStale(`${dir}/missing`))
      assert.strictEqual(error._tag, "CleanupFailure")
      if (error._tag === "CleanupFailure") expect(error.reason._tag).toBe("NotFound")
      const invalid = yield* Effect.flip(atomic.cleanupStale(""))
      expect(invalid._tag).toBe("InvalidInput")
    }))
})
