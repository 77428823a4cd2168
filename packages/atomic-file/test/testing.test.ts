/**
 * The in-memory layers of `@intent/atomic-file/testing`: the memory
 * FileSystem answers like the Node one (same error codes for the same
 * mistakes), and AtomicFile runs on it unchanged.
 */
import { NodeContext, NodeFileSystem } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { AtomicFile, layerNode } from "../src/AtomicFile.js"
import { errorCode } from "../src/internal/errno.js"
import { layerCrashSimFileSystem, layerMemory, layerMemoryFileSystem } from "../src/testing.js"

const decoder = new TextDecoder()
const encoder = new TextEncoder()

/** Each case: set up, then one call whose error code (or "ok") is compared. */
const probes: ReadonlyArray<
  readonly [string, (fs: FileSystem.FileSystem, dir: string) => Effect.Effect<unknown, unknown, never>]
> = [
  ["open a missing file for reading", (fs, dir) => Effect.scoped(fs.open(`${dir}/missing`))],
  [
    "create an existing file exclusively",
    (fs, dir) =>
      Effect.zipRight(fs.writeFileString(`${dir}/f`, "x"), Effect.scoped(fs.open(`${dir}/f`, { flag: "wx" })))
  ],
  [
    "open a directory for writing",
    (fs, dir) => Effect.zipRight(fs.makeDirectory(`${dir}/d`), Effect.scoped(fs.open(`${dir}/d`, { flag: "a" })))
  ],
  [
    "create a file under a regular file",
    (fs, dir) =>
      Effect.zipRight(fs.writeFileString(`${dir}/f`, "x"), Effect.scoped(fs.open(`${dir}/f/g`, { flag: "w" })))
  ],
  ["create a file in a missing directory", (fs, dir) => Effect.scoped(fs.open(`${dir}/no/g`, { flag: "wx" }))],
  [
    "readlink a regular file",
    (fs, dir) => Effect.zipRight(fs.writeFileString(`${dir}/f`, "x"), fs.readLink(`${dir}/f`))
  ],
  ["readlink a missing path", (fs, dir) => fs.readLink(`${dir}/missing`)],
  [
    "stat under a regular file",
    (fs, dir) => Effect.zipRight(fs.writeFileString(`${dir}/f`, "x"), fs.stat(`${dir}/f/g`))
  ],
  [
    "mkdir an existing directory",
    (fs, dir) => Effect.zipRight(fs.makeDirectory(`${dir}/d`), fs.makeDirectory(`${dir}/d`))
  ],
  ["mkdir with a missing parent", (fs, dir) => fs.makeDirectory(`${dir}/a/b`)],
  ["rename a file over a non-empty directory", (fs, dir) =>
    Effect.gen(function*() {
      yield* fs.writeFileString(`${dir}/f`, "x")
      yield* fs.makeDirectory(`${dir}/d`)
      yield* fs.writeFileString(`${dir}/d/inside`, "x")
      yield* fs.rename(`${dir}/f`, `${dir}/d`)
    })],
  ["rename a file over a file", (fs, dir) =>
    Effect.gen(function*() {
      yield* fs.writeFileString(`${dir}/f`, "x")
      yield* fs.writeFileString(`${dir}/g`, "y")
      yield* fs.rename(`${dir}/f`, `${dir}/g`)
    })],
  ["read a directory as a file", (fs, dir) => Effect.zipRight(fs.makeDirectory(`${dir}/d`), fs.readFile(`${dir}/d`))],
  ["follow a symbolic link loop", (fs, dir) =>
    Effect.gen(function*() {
      yield* fs.symlink("y", `${dir}/x`)
      yield* fs.symlink("x", `${dir}/y`)
      yield* fs.readFile(`${dir}/x`)
    })]
]

const outcome = (effect: Effect.Effect<unknown, unknown>) =>
  Effect.match(effect, {
    onSuccess: () => "ok",
    onFailure: (error) =>
      typeof error === "object" && error !== null && "_tag" in error &&
        (error._tag === "SystemError" || error._tag === "BadArgument")
        ? errorCode(error as Parameters<typeof errorCode>[0])
        : String(error)
  })

const runProbes = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const results: Array<string> = []
  for (const [name, probe] of probes) {
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "probe-" })
    results.push(`${name}: ${yield* outcome(probe(fs, dir))}`)
  }
  return results
}).pipe(Effect.scoped)

describe("the memory FileSystem", () => {
  it.effect("gives the same error codes as the Node FileSystem", () =>
    Effect.gen(function*() {
      const node = yield* Effect.provide(runProbes, NodeFileSystem.layer)
      const memory = yield* Effect.provide(runProbes, layerMemoryFileSystem())
      expect(memory).toEqual(node)
      // the crash simulator's live view is the same FileSystem, journaled
      const crashSim = yield* Effect.provide(runProbes, layerCrashSimFileSystem())
      expect(crashSim).toEqual(node)
      // and the probes do provoke errors
      expect(node.filter((line) => !line.endsWith(": ok")).length).toBe(probes.length - 1)
    }))

  it.effect("files: append mode, positions, truncate, modes", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      yield* fs.makeDirectory("/data")
      yield* fs.writeFileString("/data/f", "hello")
      yield* Effect.scoped(Effect.gen(function*() {
        const file = yield* fs.open("/data/f", { flag: "a+" })
        yield* file.write(encoder.encode(" world"))
        yield* file.seek(0, "start")
        const all = yield* file.readAlloc(100)
        expect(Option.map(all, (b) => decoder.decode(b))).toEqual(Option.some("hello world"))
        yield* file.truncate(5)
      }))
      expect(yield* fs.readFileString("/data/f")).toBe("hello")
      yield* fs.chmod("/data/f", 0o640)
      expect((yield* fs.stat("/data/f")).mode & 0o777).toBe(0o640)
    }).pipe(Effect.provide(layerMemoryFileSystem())))
})

describe("AtomicFile on the memory layers", () => {
  it.effect("writes, updates, appends, follows links and cleans up, without a disk", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      yield* atomic.writeFileString("/srv/app/config.json", "{}")
      expect(yield* fs.readFileString("/srv/app/config.json")).toBe("{}")
      yield* fs.symlink("config.json", "/srv/app/current")
      yield* atomic.writeFileString("/srv/app/current", `{"v":2}`)
      expect(yield* fs.readFileString("/srv/app/config.json")).toBe(`{"v":2}`)
      expect(yield* fs.readLink("/srv/app/current")).toBe("config.json")
      yield* atomic.update("/srv/app/n", (current) =>
        Effect.succeed(encoder.encode(String(Option.match(current, { onNone: () => 0, onSome: () => 1 })))))
      yield* atomic.append("/srv/app/log", "one")
      yield* atomic.append("/srv/app/log", "two")
      expect(yield* fs.readFileString("/srv/app/log")).toBe("one\ntwo\n")
      const error = yield* Effect.flip(atomic.writeFileString("/srv/app/config.json/x", "no"))
      assert.strictEqual(error._tag, "DirectoryCreationFailure")
      if (error._tag === "DirectoryCreationFailure") {
        expect(error.reason._tag).toBe("NotDirectory")
      }
      yield* fs.writeFileString("/srv/app/.config.json~9999999-0123456789abcdef#atomic-tmp", "stale")
      const report = yield* atomic.cleanupStale("/srv/app")
      expect(report.removed).toEqual(["/srv/app/.config.json~9999999-0123456789abcdef#atomic-tmp"])
      expect((yield* fs.readDirectory("/srv/app")).sort()).toEqual(["config.json", "current", "log", "n"])
    }).pipe(Effect.provide(Layer.fresh(layerMemory()))))
})

describe("AtomicFile.layerNode on another FileSystem", () => {
  it.effect("dies when built, saying to use AtomicFile.Default, rather than open files where the FileSystem is not", () =>
    Effect.gen(function*() {
      const built = yield* Effect.exit(
        Effect.provide(AtomicFile, layerNode.pipe(Layer.provide(Layer.merge(layerMemoryFileSystem(), Path.layer))))
      )
      assert(Exit.isFailure(built) && Cause.isDie(built.cause))
      expect(Cause.pretty(built.cause)).toContain("use AtomicFile.Default")
      // and on Node's own it builds
      const node = yield* Effect.exit(Effect.provide(AtomicFile, layerNode.pipe(Layer.provide(NodeContext.layer))))
      expect(Exit.isSuccess(node)).toBe(true)
    }))
})
