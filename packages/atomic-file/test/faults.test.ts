/**
 * Failures the real file system cannot produce on demand, injected through a
 * FileSystem wrapper around the real one: the files on disk are real, only
 * the chosen call fails.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import { assert, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import { AtomicFile, type Durability } from "../src/AtomicFile.js"
import { type CleanupFailure, formatError } from "../src/AtomicFileError.js"
import {
  listTree,
  overrideOpenedFiles,
  readText,
  systemError,
  tempDirectory,
  tempFilesUnder,
  wrapFile,
  wrappedFileSystem
} from "./support.js"

const isTemp = (path: string) => path.endsWith("#atomic-tmp")

/** Runs `body` in a fresh directory holding `f` = "old", over `layer`. */
const withOldFile = <A, E>(
  layer: Layer.Layer<AtomicFile | FileSystem.FileSystem | Path.Path>,
  body: (dir: string, atomic: AtomicFile) => Effect.Effect<A, E, FileSystem.FileSystem | Path.Path>
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const atomic = yield* AtomicFile
    const dir = yield* tempDirectory
    yield* fs.writeFileString(`${dir}/f`, "old")
    return yield* body(dir, atomic)
  }).pipe(Effect.scoped, Effect.provide(layer))

describe("injected failures", () => {
  it.effect("ENOSPC while writing: TempWriteFailure(DiskFull), target unchanged, no temp", () =>
    withOldFile(
      wrappedFileSystem(
        overrideOpenedFiles(isTemp, (_, path) => ({ write: () => Effect.fail(systemError("write", "ENOSPC", path)) }))
      ),
      (dir, atomic) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/f`, "new"))
          assert.strictEqual(error._tag, "TempWriteFailure")
          if (error._tag === "TempWriteFailure") {
            expect(error.reason).toMatchObject({ _tag: "DiskFull", code: "ENOSPC" })
            expect(error.path).toBe(`${dir}/f`)
            expect(isTemp(error.tempPath)).toBe(true)
          }
          expect(yield* readText(`${dir}/f`)).toBe("old")
          expect(yield* listTree(dir)).toEqual(["f"])
        })
    ))

  it.effect("EIO at the file's fsync: TempWriteFailure(IOError), target unchanged, no temp", () =>
    withOldFile(
      wrappedFileSystem(
        overrideOpenedFiles(isTemp, (_, path) => ({ sync: Effect.fail(systemError("sync", "EIO", path)) }))
      ),
      (dir, atomic) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/f`, "new"))
          assert.strictEqual(error._tag, "TempWriteFailure")
          if (error._tag === "TempWriteFailure") {
            expect(error.reason._tag).toBe("IOError")
          }
          expect(yield* readText(`${dir}/f`)).toBe("old")
          expect(yield* listTree(dir)).toEqual(["f"])
        })
    ))

  it.effect("EIO at the directory's fsync: DirectorySyncFailure, the new content is in place", () =>
    withOldFile(
      wrappedFileSystem(
        overrideOpenedFiles(
          (path, options) => options?.flag === "r" && !isTemp(path),
          (_, path) => ({ sync: Effect.fail(systemError("sync", "EIO", path)) })
        )
      ),
      (dir, atomic) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/f`, "new"))
          assert.strictEqual(error._tag, "DirectorySyncFailure")
          if (error._tag === "DirectorySyncFailure") {
            expect(error.directory).toBe(dir)
            expect(formatError(error)).toContain("the target has the new content")
          }
          expect(yield* readText(`${dir}/f`)).toBe("new")
          expect(yield* listTree(dir)).toEqual(["f"])
          // "file" durability does not sync the directory, so it succeeds
          yield* atomic.writeFileString(`${dir}/f`, "newer", { durability: "file" })
          expect(yield* readText(`${dir}/f`)).toBe("newer")
        })
    ))

  it.effect("EXDEV at the rename: RenameFailure(CrossDevice), target unchanged, no temp", () =>
    withOldFile(
      wrappedFileSystem(() => ({
        rename: (from) => Effect.fail(systemError("rename", "EXDEV", from))
      })),
      (dir, atomic) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/f`, "new"))
          assert.strictEqual(error._tag, "RenameFailure")
          if (error._tag === "RenameFailure") expect(error.reason._tag).toBe("CrossDevice")
          expect(yield* readText(`${dir}/f`)).toBe("old")
          expect(yield* listTree(dir)).toEqual(["f"])
        })
    ))

  for (const [code, tag] of [["EMFILE", "TooManyOpenFiles"], ["EROFS", "ReadOnlyFileSystem"]] as const) {
    it.effect(`${code} creating the temp file: TempWriteFailure(${tag})`, () =>
      withOldFile(
        wrappedFileSystem((real) => ({
          open: (path, options) =>
            isTemp(path) ? Effect.fail(systemError("open", code, path)) : real.open(path, options)
        })),
        (dir, atomic) =>
          Effect.gen(function*() {
            const error = yield* Effect.flip(atomic.writeFileString(`${dir}/f`, "new"))
            assert.strictEqual(error._tag, "TempWriteFailure")
            if (error._tag === "TempWriteFailure") expect(error.reason._tag).toBe(tag)
            expect(yield* readText(`${dir}/f`)).toBe("old")
            expect(yield* listTree(dir)).toEqual(["f"])
          })
      ))
  }

  it.effect("short writes are continued until every byte is written", () => {
    let writes = 0
    return withOldFile(
      wrappedFileSystem(overrideOpenedFiles(isTemp, (file) => ({
        write: (buffer) => {
          writes++
          return file.write(buffer.subarray(0, 7))
        }
      }))),
      (dir, atomic) =>
        Effect.gen(function*() {
          const text = "0123456789".repeat(10) // 100 bytes: 15 writes of at most 7
          yield* atomic.writeFileString(`${dir}/f`, text)
          expect(yield* readText(`${dir}/f`)).toBe(text)
          expect(writes).toBe(15)
        })
    )
  })

  it.effect("a write that makes no progress fails instead of looping", () =>
    withOldFile(
      wrappedFileSystem(overrideOpenedFiles(isTemp, () => ({ write: () => Effect.succeed(FileSystem.Size(0)) }))),
      (dir, atomic) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/f`, "new"))
          assert.strictEqual(error._tag, "TempWriteFailure")
          if (error._tag === "TempWriteFailure") {
            expect(error.reason._tag).toBe("IOError")
          }
          expect(yield* readText(`${dir}/f`)).toBe("old")
          expect(yield* listTree(dir)).toEqual(["f"])
        })
    ))

  it.effect("a temp name that exists already (EEXIST) is retried under a new name", () => {
    let collisions = 0
    return withOldFile(
      wrappedFileSystem((real) => ({
        open: (path, options) =>
          isTemp(path) && collisions++ < 3 ? Effect.fail(systemError("open", "EEXIST", path)) : real.open(path, options)
      })),
      (dir, atomic) =>
        Effect.gen(function*() {
          yield* atomic.writeFileString(`${dir}/f`, "new")
          expect(collisions).toBe(4)
          expect(yield* readText(`${dir}/f`)).toBe("new")
          expect(yield* listTree(dir)).toEqual(["f"])
        })
    )
  })

  it.effect("a failed temp removal is logged as CleanupFailure and the primary error is kept", () => {
    const logged: Array<unknown> = []
    const logger = Logger.make(({ message }) => {
      logged.push(...(Array.isArray(message) ? message : [message]))
    })
    return withOldFile(
      wrappedFileSystem((real) => ({
        ...overrideOpenedFiles(isTemp, (_, path) => ({ write: () => Effect.fail(systemError("write", "EIO", path)) }))(
          real
        ),
        remove: (path) => Effect.fail(systemError("remove", "EACCES", path))
      })),
      (dir, atomic) =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/f`, "new"))
          assert.strictEqual(error._tag, "TempWriteFailure")
          if (error._tag === "TempWriteFailure") expect(error.reason._tag).toBe("IOError")
          const cleanup = logged.find((m): m is CleanupFailure =>
            typeof m === "object" && m !== null && (m as { _tag?: string })._tag === "CleanupFailure"
          )
          assert.isDefined(cleanup)
          expect(cleanup?.reason._tag).toBe("PermissionDenied")
          // the temp file really is left behind, and the target unchanged
          expect(yield* tempFilesUnder(dir)).toHaveLength(1)
          expect(yield* readText(`${dir}/f`)).toBe("old")
        })
    ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.effect("chown refused with EPERM (not root) is ignored; any other chown error fails", () => {
    let chownCode = "EPERM"
    return withOldFile(
      wrappedFileSystem((real) => ({
        // the file appears to belong to someone else, so the owner must be kept
        stat: (path) => Effect.map(real.stat(path), (info) => ({ ...info, uid: Option.some(4242) })),
        chown: (path) => Effect.fail(systemError("chown", chownCode, path))
      })),
      (dir, atomic) =>
        Effect.gen(function*() {
          yield* atomic.writeFileString(`${dir}/f`, "new")
          expect(yield* readText(`${dir}/f`)).toBe("new")
          chownCode = "EIO"
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/f`, "newer"))
          assert.strictEqual(error._tag, "TempWriteFailure")
          if (error._tag === "TempWriteFailure") expect(error.reason._tag).toBe("IOError")
          expect(yield* readText(`${dir}/f`)).toBe("new")
          expect(yield* listTree(dir)).toEqual(["f"])
        })
    )
  })
})

describe("per-path order", () => {
  it.live("a slow earlier write never overtakes a later one: the last call's content ends on disk", () =>
    withOldFile(
      // the write of call i sleeps (10 - i) * 20 ms: unordered, call 1 would
      // rename last and win
      wrappedFileSystem((real) => ({
        open: (path, options) =>
          Effect.map(real.open(path, options), (file) =>
            wrapFile(file, {
              write: (buffer) => {
                const call = Number(new TextDecoder().decode(buffer).split(" ")[1])
                return Effect.zipRight(Effect.sleep(`${(10 - call) * 20} millis`), file.write(buffer))
              }
            }))
      })),
      (dir, atomic) =>
        Effect.gen(function*() {
          const order: Array<number> = []
          yield* Effect.forEach(
            Array.from({ length: 10 }, (_, i) => i + 1),
            (i) =>
              Effect.zipRight(
                // options alternate, so that no two calls in a row are
                // coalesced into one write: ten writes, in call order
                atomic.writeFileString(`${dir}/f`, `call ${i}`, { durability: "none", mode: i % 2 ? 0o640 : 0o644 }),
                Effect.sync(() => order.push(i))
              ),
            { concurrency: "unbounded", discard: true }
          )
          expect(order).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
          expect(yield* readText(`${dir}/f`)).toBe("call 10")
          expect(yield* listTree(dir)).toEqual(["f"])
        })
    ))
})

describe("the sequence of file system calls", () => {
  /** Records the calls that matter for durability, with paths made relative. */
  const recorded = (durability: Durability, target: string) => {
    const calls: Array<string> = []
    let dir = ""
    const name = (path: string) => isTemp(path) ? "<temp>" : path === dir ? "<dir>" : path.slice(dir.length + 1)
    const layer = wrappedFileSystem((real) => ({
      open: (path, options) =>
        Effect.map(real.open(path, options), (file) => {
          calls.push(`open ${name(path)} ${options?.flag ?? "r"} ${options?.mode?.toString(8) ?? ""}`.trim())
          return wrapFile(file, {
            write: (buffer) =>
              Effect.zipRight(Effect.sync(() => calls.push(`write ${name(path)}`)), file.write(buffer)),
            sync: Effect.zipRight(Effect.sync(() => calls.push(`fsync ${name(path)}`)), file.sync)
          })
        }),
      rename: (from, to) =>
        Effect.zipRight(Effect.sync(() => calls.push(`rename ${name(from)} ${name(to)}`)), real.rename(from, to)),
      chmod: (path, mode) =>
        Effect.zipRight(
          Effect.sync(() => calls.push(`chmod ${name(path)} ${mode.toString(8)}`)),
          real.chmod(path, mode)
        ),
      makeDirectory: (path, options) =>
        Effect.zipRight(Effect.sync(() => calls.push(`mkdir ${name(path)}`)), real.makeDirectory(path, options))
    }))
    return Effect.gen(function*() {
      const atomic = yield* AtomicFile
      dir = yield* tempDirectory
      yield* atomic.writeFileString(`${dir}/${target}`, "content", { durability, mode: 0o640 })
      return calls
    }).pipe(Effect.scoped, Effect.provide(layer))
  }

  it.effect("full: create with the final mode, write, fsync the file, rename, fsync the directory", () =>
    Effect.map(recorded("full", "f"), (calls) =>
      expect(calls).toEqual([
        "open <temp> wx 640",
        "write <temp>",
        "fsync <temp>",
        "rename <temp> f",
        "open <dir> r",
        "fsync <dir>"
      ])))

  it.effect("full with new parents: each new directory's entry is synced in its parent", () =>
    Effect.map(recorded("full", "a/b/f"), (calls) => {
      // the first create fails with ENOENT (not recorded), then the
      // missing levels are made top-down after one failed try at the deepest
      expect(calls.slice(0, 3)).toEqual(["mkdir a/b", "mkdir a", "mkdir a/b"])
      // both new entries are synced in their parents before the temp file
      const syncs = calls.slice(3, 7).sort()
      expect(syncs).toEqual(["fsync <dir>", "fsync a", "open <dir> r", "open a r"])
      expect(calls.slice(7)).toEqual([
        "open <temp> wx 640",
        "write <temp>",
        "fsync <temp>",
        "rename <temp> a/b/f",
        "open a/b r",
        "fsync a/b"
      ])
    }))

  it.effect("file: fsync the file only", () =>
    Effect.map(
      recorded("file", "f"),
      (calls) =>
        expect(calls).toEqual([
          "open <temp> wx 640",
          "write <temp>",
          "fsync <temp>",
          "rename <temp> f"
        ])
    ))

  it.effect("none: no fsync at all", () =>
    Effect.map(
      recorded("none", "f"),
      (calls) => expect(calls).toEqual(["open <temp> wx 640", "write <temp>", "rename <temp> f"])
    ))
})
