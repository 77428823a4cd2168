import { NodeContext, NodePath } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, expect, it, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { AtomicFile } from "../src/AtomicFile.js"
import * as FileLock from "../src/FileLock.js"
import { requireBuild, spawnScript } from "./childProcess.js"
import {
  bytes,
  isRoot,
  listTree,
  LiveLayer,
  overrideOpenedFiles,
  readText,
  systemError,
  tempDirectory,
  tmpfsScoped,
  wrappedFileSystem
} from "./support.js"

const decoder = new TextDecoder()
const text = (data: Uint8Array) => decoder.decode(data)

/** A child that runs `iterations` read-modify-write increments through `update`. */
const incrementScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect, Option } from "effect"
  import { AtomicFile } from DIST
  const [file, iterations] = process.argv.slice(1)
  Effect.gen(function*() {
    const atomic = yield* AtomicFile.AtomicFile
    for (let i = 0; i < Number(iterations); i++) {
      yield* atomic.update(file, (current) => Effect.succeed(new TextEncoder().encode(String(
        Number(Option.match(current, { onNone: () => "0", onSome: (b) => new TextDecoder().decode(b) })) + 1
      ))), { durability: "none" })
    }
  }).pipe(Effect.provide(AtomicFile.AtomicFile.Default), Effect.provide(NodeContext.layer), Effect.runPromise)
    .then(() => console.log("done"), (e) => { console.log("failed " + e); process.exit(1) })
`

/** A child that appends `count` records `<tag>-<i>` to `file`. */
const appendScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect } from "effect"
  import { AtomicFile } from DIST
  const [file, tag, count] = process.argv.slice(1)
  Effect.gen(function*() {
    const atomic = yield* AtomicFile.AtomicFile
    for (let i = 0; i < Number(count); i++) yield* atomic.append(file, tag + "-" + i, { durability: "none" })
  }).pipe(Effect.provide(AtomicFile.AtomicFile.Default), Effect.provide(NodeContext.layer), Effect.runPromise)
    .then(() => console.log("done"), (e) => { console.log("failed " + e); process.exit(1) })
`

const runChildren = (script: string, argsList: ReadonlyArray<ReadonlyArray<string>>) =>
  Effect.forEach(
    argsList,
    (args) =>
      Effect.flatMap(spawnScript(script, args), (child) =>
        Effect.flatMap(child.exit, (exit) =>
          exit.code === 0
            ? Effect.void
            : Effect.dieMessage(`child failed (${exit.code}): ${child.lines.join(" | ")}`))),
    {
      concurrency: "unbounded",
      discard: true
    }
  )

layer(LiveLayer)("update", (it) => {
  it.scoped("reads None for a missing file, Some for an existing one, and returns what it wrote", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      const seen: Array<Option.Option<string>> = []
      const f = (current: Option.Option<Uint8Array>) =>
        Effect.sync(() => {
          seen.push(Option.map(current, text))
          return bytes(Option.match(current, { onNone: () => "first", onSome: (b) => `${text(b)}+next` }))
        })
      expect(text(yield* atomic.update(`${dir}/a/f`, f))).toBe("first")
      expect(text(yield* atomic.update(`${dir}/a/f`, f))).toBe("first+next")
      expect(seen).toEqual([Option.none(), Option.some("first")])
      expect(yield* readText(`${dir}/a/f`)).toBe("first+next")
      expect(yield* listTree(dir)).toEqual(["a", "a/f", "a/f.lock"])
    }))

  it.scoped("100 concurrent fibers incrementing: none lost", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      const increment = atomic.update(`${dir}/n`, (current) =>
        Effect.succeed(bytes(String(Number(Option.match(current, { onNone: () => "0", onSome: text })) + 1))))
      yield* Effect.all(
        Array.from({ length: 100 }, () =>
          increment),
        { concurrency: "unbounded", discard: true }
      )
      expect(yield* readText(`${dir}/n`)).toBe("100")
    }))

  it.scoped("4 processes x 250 increments: none lost", () =>
    Effect.gen(function*() {
      yield* requireBuild
      const dir = yield* tempDirectory
      yield* runChildren(incrementScript, Array.from({ length: 4 }, () => [`${dir}/n`, "250"]))
      expect(yield* readText(`${dir}/n`)).toBe("1000")
      expect(yield* listTree(dir)).toEqual(["n", "n.lock"])
    }), 120_000)

  it.scoped("a failing f leaves the target unchanged and releases the lock", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.writeFileString(`${dir}/f`, "old")
      const error = yield* Effect.flip(atomic.update(`${dir}/f`, () => Effect.fail("refused" as const)))
      expect(error).toBe("refused")
      expect(yield* readText(`${dir}/f`)).toBe("old")
      yield* atomic.update(`${dir}/f`, () => Effect.succeed(bytes("new")), { lockTimeout: "1 second" })
      expect(yield* readText(`${dir}/f`)).toBe("new")
    }))

  it.scoped("maxBytes: a larger file fails with FileTooLarge before f runs", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.writeFileString(`${dir}/f`, "0123456789")
      let ran = false
      const error = yield* Effect.flip(
        atomic.update(`${dir}/f`, () => Effect.sync(() => (ran = true, bytes("x"))), { maxBytes: 9 })
      )
      assert.strictEqual(error._tag, "FileTooLarge")
      if (error._tag === "FileTooLarge") expect([error.size, error.maxBytes]).toEqual([10, 9])
      expect(ran).toBe(false)
      expect(yield* readText(`${dir}/f`)).toBe("0123456789")
    }))

  it.scoped("the target is a directory: TargetResolutionFailure, f never runs", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.makeDirectory(`${dir}/d`)
      const error = yield* Effect.flip(atomic.update(`${dir}/d`, () => Effect.die("must not run")))
      expect(error._tag).toBe("TargetResolutionFailure")
    }))
})

describe("update with injected failures", () => {
  it.effect("a read failure: ReadFailure, target unchanged", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.writeFileString(`${dir}/f`, "old")
      const error = yield* Effect.flip(atomic.update(`${dir}/f`, () => Effect.succeed(bytes("new"))))
      assert.strictEqual(error._tag, "ReadFailure")
      if (error._tag === "ReadFailure") expect(error.reason._tag).toBe("IOError")
      expect(yield* readText(`${dir}/f`)).toBe("old")
    }).pipe(
      Effect.scoped,
      Effect.provide(
        wrappedFileSystem(() => ({ readFile: (path) => Effect.fail(systemError("readFile", "EIO", path)) }))
      )
    ))

  it.live("a lock held elsewhere: LockTimeout, f never runs, nothing written", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const lock = yield* FileLock.FileLock
      const dir = yield* tempDirectory
      const holding = yield* Deferred.make<void>()
      const holder = yield* Effect.fork(
        lock.withLock(`${dir}/f`)(Effect.zipRight(Deferred.succeed(holding, undefined), Effect.never))
      )
      yield* Deferred.await(holding)
      const error = yield* Effect.flip(
        atomic.update(`${dir}/f`, () => Effect.die("must not run"), { lockTimeout: "100 millis" })
      )
      expect(error._tag).toBe("LockTimeout")
      yield* Fiber.interrupt(holder)
      expect(yield* listTree(dir)).toEqual([])
    }).pipe(
      Effect.scoped,
      // AtomicFile over an in-memory lock taken from the environment
      Effect.provide(
        Layer.provideMerge(AtomicFile.DefaultWithoutDependencies, Layer.merge(FileLock.layerMemory, NodeContext.layer))
          .pipe(Layer.provideMerge(NodePath.layer))
      )
    ))
})

layer(LiveLayer)("append", (it) => {
  it.scoped("creates the file and appends newline-terminated records", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      yield* atomic.append(`${dir}/x/log.jsonl`, `{"a":1}`)
      yield* atomic.append(`${dir}/x/log.jsonl`, bytes(`{"b":2}`))
      yield* atomic.append(`${dir}/x/log.jsonl`, "")
      expect(yield* readText(`${dir}/x/log.jsonl`)).toBe(`{"a":1}\n{"b":2}\n\n`)
      expect(yield* listTree(dir)).toEqual(["x", "x/log.jsonl", "x/log.jsonl.lock"])
    }))

  it.scoped("a last line without a newline is terminated first, never cut", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      // as the original tool writes: no newline after the last record
      yield* fs.writeFileString(`${dir}/s.jsonl`, `{"id":"1"}\n{"id":"2"}`)
      yield* atomic.append(`${dir}/s.jsonl`, `{"id":"3"}`)
      expect(yield* readText(`${dir}/s.jsonl`)).toBe(`{"id":"1"}\n{"id":"2"}\n{"id":"3"}\n`)
    }))

  describe("tornTail", () => {
    /** A JSON object is complete; anything else without a newline is a fragment. */
    const seen: Array<string> = []
    const tornTail = (sidecar: string) => ({
      sidecar,
      isTorn: (fragment: Uint8Array) => {
        seen.push(text(fragment))
        try {
          JSON.parse(text(fragment))
          return false
        } catch {
          return true
        }
      }
    })

    it.scoped("a torn last line goes to the sidecar, is cut, and the record follows the last complete line", () =>
      Effect.gen(function*() {
        const atomic = yield* AtomicFile
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        const file = `${dir}/s.jsonl`
        // a fragment longer than the 64 KiB read backward at a time
        const fragment = `{"id":"2","note":"${"x".repeat(150 * 1024)}`
        yield* fs.writeFileString(file, `{"id":"1"}\n${fragment}`)
        seen.length = 0
        yield* atomic.append(file, `{"id":"3"}`, { tornTail: tornTail(`${file}.rejected`) })
        expect(seen).toEqual([fragment])
        expect(yield* readText(file)).toBe(`{"id":"1"}\n{"id":"3"}\n`)
        expect(yield* readText(`${file}.rejected`)).toBe(`${fragment}\n`)
        // a file that is all fragment is cut to nothing; the sidecar keeps both, in order
        yield* fs.writeFileString(file, `{"id`)
        yield* atomic.append(file, `{"id":"4"}`, { tornTail: tornTail(`${file}.rejected`) })
        expect(yield* readText(file)).toBe(`{"id":"4"}\n`)
        expect(yield* readText(`${file}.rejected`)).toBe(`${fragment}\n{"id\n`)
        expect(yield* listTree(dir)).toEqual(["s.jsonl", "s.jsonl.lock", "s.jsonl.rejected", "s.jsonl.rejected.lock"])
      }))

    it.scoped("a complete last line is terminated; a file ending with a newline is not even asked about", () =>
      Effect.gen(function*() {
        const atomic = yield* AtomicFile
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        const file = `${dir}/s.jsonl`
        yield* fs.writeFileString(file, `{"id":"1"}\n{"id":"2"}`)
        seen.length = 0
        yield* atomic.append(file, `{"id":"3"}`, { tornTail: tornTail(`${file}.rejected`) })
        yield* atomic.append(file, `{"id":"4"}`, { tornTail: tornTail(`${file}.rejected`) })
        expect(seen).toEqual([`{"id":"2"}`])
        expect(yield* readText(file)).toBe(`{"id":"1"}\n{"id":"2"}\n{"id":"3"}\n{"id":"4"}\n`)
        expect(yield* fs.exists(`${file}.rejected`)).toBe(false)
      }))

    it.scoped("the sidecar cannot be written (a directory): its error, and the file keeps the fragment", () =>
      Effect.gen(function*() {
        const atomic = yield* AtomicFile
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        const file = `${dir}/s.jsonl`
        yield* fs.writeFileString(file, `{"id":"1"}\n{"id`)
        yield* fs.makeDirectory(`${file}.rejected`)
        const error = yield* Effect.flip(atomic.append(file, `{"id":"3"}`, { tornTail: tornTail(`${file}.rejected`) }))
        expect(error).toMatchObject({ _tag: "TargetResolutionFailure", path: `${file}.rejected` })
        expect(yield* readText(file)).toBe(`{"id":"1"}\n{"id`)
      }))

    it.scoped("the sidecar is the file itself: InvalidInput, nothing changed", () =>
      Effect.gen(function*() {
        const atomic = yield* AtomicFile
        const fs = yield* FileSystem.FileSystem
        const dir = yield* tempDirectory
        const file = `${dir}/s.jsonl`
        yield* fs.writeFileString(file, `{"id`)
        const error = yield* Effect.flip(atomic.append(file, `{"id":"3"}`, { tornTail: tornTail(`${dir}/./s.jsonl`) }))
        expect(error._tag).toBe("InvalidInput")
        expect(yield* readText(file)).toBe(`{"id`)
      }))
  })

  it.scoped("a record with a newline is InvalidInput and changes nothing", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.writeFileString(`${dir}/s`, "a\n")
      const error = yield* Effect.flip(atomic.append(`${dir}/s`, "b\nc"))
      expect(error._tag).toBe("InvalidInput")
      expect(yield* readText(`${dir}/s`)).toBe("a\n")
    }))

  it.scoped("100 concurrent fibers: 100 whole lines", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const dir = yield* tempDirectory
      yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => atomic.append(`${dir}/log`, `record-${i}-${"x".repeat(i * 50)}`),
        { concurrency: "unbounded", discard: true }
      )
      const lines = (yield* readText(`${dir}/log`)).split("\n")
      expect(lines.pop()).toBe("")
      expect(lines).toEqual(Array.from({ length: 100 }, (_, i) => `record-${i}-${"x".repeat(i * 50)}`))
    }))

  it.scoped("4 processes x 100 appends: 400 whole lines, each process's in its order", () =>
    Effect.gen(function*() {
      yield* requireBuild
      const dir = yield* tempDirectory
      yield* runChildren(appendScript, ["a", "b", "c", "d"].map((tag) => [`${dir}/log`, tag, "100"]))
      const lines = (yield* readText(`${dir}/log`)).split("\n")
      expect(lines.pop()).toBe("")
      expect(lines.length).toBe(400)
      for (const tag of ["a", "b", "c", "d"]) {
        expect(lines.filter((line) => line.startsWith(`${tag}-`))).toEqual(
          Array.from({ length: 100 }, (_, i) => `${tag}-${i}`)
        )
      }
    }), 120_000)

  it.scoped.skipIf(!isRoot)(
    "disk full on a real tmpfs: AppendFailure, the file cut back to its old length",
    () =>
      Effect.gen(function*() {
        const atomic = yield* AtomicFile
        const fs = yield* FileSystem.FileSystem
        const mount = yield* tmpfsScoped("64k")
        yield* atomic.append(`${mount}/log`, "first")
        const error = yield* Effect.flip(atomic.append(`${mount}/log`, "y".repeat(200 * 1024)))
        assert.strictEqual(error._tag, "AppendFailure")
        if (error._tag === "AppendFailure") {
          expect(error.reason._tag).toBe("DiskFull")
          expect(error.truncated).toBe(true)
        }
        expect(yield* readText(`${mount}/log`)).toBe("first\n")
        expect(Number((yield* fs.stat(`${mount}/log`)).size)).toBe(6)
        yield* atomic.append(`${mount}/log`, "second")
        expect(yield* readText(`${mount}/log`)).toBe("first\nsecond\n")
      })
  )
})

describe("append with injected failures", () => {
  const failingSync = wrappedFileSystem(
    overrideOpenedFiles(
      (_, options) => options?.flag?.startsWith("a") ?? false,
      (_, path) => ({ sync: Effect.fail(systemError("sync", "EIO", path)) })
    )
  )

  it.effect("EIO at fsync: AppendFailure, the record is cut away again", () =>
    Effect.gen(function*() {
      const atomic = yield* AtomicFile
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDirectory
      yield* fs.writeFileString(`${dir}/log`, "kept")
      const error = yield* Effect.flip(atomic.append(`${dir}/log`, "lost"))
      assert.strictEqual(error._tag, "AppendFailure")
      if (error._tag === "AppendFailure") {
        expect(error.reason._tag).toBe("IOError")
        expect(error.truncated).toBe(true)
      }
      expect(yield* readText(`${dir}/log`)).toBe("kept")
      // durability "none" does not sync, so it goes through
      yield* atomic.append(`${dir}/log`, "next", { durability: "none" })
      expect(yield* readText(`${dir}/log`)).toBe("kept\nnext\n")
    }).pipe(Effect.scoped, Effect.provide(failingSync)))
})
