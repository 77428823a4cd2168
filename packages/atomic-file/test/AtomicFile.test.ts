import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, expect, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { createHash } from "node:crypto"
import { AtomicFile } from "../src/AtomicFile.js"
import { formatError } from "../src/AtomicFileError.js"
import {
  asNobody,
  bytes,
  isRoot,
  listTree,
  LiveDefaultLayer,
  LiveLayer,
  readText,
  tempDirectory,
  tempFilesUnder
} from "./support.js"

/** A file of `mode`, replaced: the new content has the same mode. */
const replaceKeepsMode = (file: string, mode: number) =>
  Effect.gen(function*() {
    const atomic = yield* AtomicFile
    const fs = yield* FileSystem.FileSystem
    yield* fs.writeFileString(file, "old")
    yield* fs.chmod(file, mode)
    yield* atomic.writeFileString(file, "new")
    expect(yield* readText(file)).toBe("new")
    expect((yield* fs.stat(file)).mode & 0o7777, mode.toString(8)).toBe(mode)
  })

if (!isRoot) {
  console.warn(
    "atomic-file: not root, so the owner and EACCES tests are skipped " +
      "(they need chown and seteuid); the EPERM case still runs on a test FileSystem " +
      "(disk full on a real tmpfs: test/reliability/kernelErrors.test.ts)"
  )
}

// every test twice: with the Node layer's own file handles, and over the
// platform's FileSystem.open (the path the test file systems take)
for (
  const [name, live] of [["AtomicFile.layerNode", LiveLayer], ["AtomicFile.Default", LiveDefaultLayer]] as const
) {
  layer(live)(`${name} on the real file system`, (it) => {
    describe("successful writes", () => {
      it.scoped("creates a new file", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          yield* atomic.writeFileString(`${dir}/new.txt`, "hello")
          expect(yield* readText(`${dir}/new.txt`)).toBe("hello")
          expect(yield* listTree(dir)).toEqual(["new.txt"])
        }))

      it.scoped("overwrites an existing file", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/f.txt`, "old content that is longer")
          yield* atomic.writeFileString(`${dir}/f.txt`, "new")
          expect(yield* readText(`${dir}/f.txt`)).toBe("new")
          expect(yield* listTree(dir)).toEqual(["f.txt"])
        }))

      it.scoped("creates nested parent directories", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          yield* atomic.writeFileString(`${dir}/a/b/c/d.json`, "{}")
          expect(yield* readText(`${dir}/a/b/c/d.json`)).toBe("{}")
          expect(yield* listTree(dir)).toEqual(["a", "a/b", "a/b/c", "a/b/c/d.json"])
        }))

      it.scoped("writes empty content", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/f`, "something")
          yield* atomic.writeFile(`${dir}/f`, new Uint8Array(0))
          expect((yield* fs.readFile(`${dir}/f`)).length).toBe(0)
          expect(yield* listTree(dir)).toEqual(["f"])
        }))

      it.scoped("writes more than 1 MiB byte for byte, at every durability", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          const data = new Uint8Array(3 * 1024 * 1024 + 17)
          for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 11)) & 0xff
          for (const durability of ["full", "file", "none"] as const) {
            yield* atomic.writeFile(`${dir}/big-${durability}.bin`, data, { durability })
            const back = yield* fs.readFile(`${dir}/big-${durability}.bin`)
            expect(Buffer.compare(Buffer.from(back), Buffer.from(data))).toBe(0)
          }
          expect(yield* tempFilesUnder(dir)).toEqual([])
        }))

      it.scoped("a 255-byte file name works, and so does a long multi-byte one", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          const ascii = "a".repeat(255)
          const multiByte = "é".repeat(127) // 254 bytes of UTF-8
          yield* atomic.writeFileString(`${dir}/${ascii}`, "one")
          yield* atomic.writeFileString(`${dir}/${ascii}`, "two")
          yield* atomic.writeFileString(`${dir}/${multiByte}`, "three")
          expect(yield* readText(`${dir}/${ascii}`)).toBe("two")
          expect(yield* readText(`${dir}/${multiByte}`)).toBe("three")
          expect(yield* listTree(dir)).toEqual([ascii, multiByte].sort())
        }))

      it.scoped("100 concurrent writes to one target end with the last call's content", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          const target = `${dir}/contended.txt`
          // later calls are shorter, so a later call finishing first would win
          // the race without the per-path ordering
          yield* Effect.forEach(
            Array.from({ length: 100 }, (_, i) => i + 1),
            (i) => atomic.writeFileString(target, `write ${i} `.padEnd(20_000 - i * 150, "x"), { durability: "none" }),
            { concurrency: "unbounded", discard: true }
          )
          const text = yield* readText(target)
          expect(text.startsWith("write 100 ")).toBe(true)
          expect(text.length).toBe(20_000 - 100 * 150)
          expect(yield* listTree(dir)).toEqual(["contended.txt"])
        }))

      it.scoped("writes to different targets run in parallel and all land", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          yield* Effect.forEach(
            Array.from({ length: 50 }, (_, i) => i),
            (i) => atomic.writeFileString(`${dir}/f${i}`, `content ${i}`),
            { concurrency: "unbounded", discard: true }
          )
          for (let i = 0; i < 50; i++) {
            expect(yield* readText(`${dir}/f${i}`)).toBe(`content ${i}`)
          }
          expect((yield* listTree(dir)).length).toBe(50)
        }))
    })

    describe("symbolic links", () => {
      it.scoped("follow (default): replaces the file the link points to, the link stays", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.makeDirectory(`${dir}/real`)
          yield* fs.writeFileString(`${dir}/real/data.txt`, "old")
          yield* fs.symlink("real/data.txt", `${dir}/link.txt`)
          yield* atomic.writeFileString(`${dir}/link.txt`, "new")
          expect(yield* fs.readLink(`${dir}/link.txt`)).toBe("real/data.txt")
          expect(yield* readText(`${dir}/real/data.txt`)).toBe("new")
          expect(yield* listTree(dir)).toEqual(["link.txt", "real", "real/data.txt"])
        }))

      it.scoped("follow: a chain of links and a dangling link", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.symlink(`${dir}/b`, `${dir}/a`)
          yield* fs.symlink("c", `${dir}/b`)
          // c does not exist: the write creates it
          yield* atomic.writeFileString(`${dir}/a`, "through two links")
          expect(yield* readText(`${dir}/c`)).toBe("through two links")
          expect(yield* fs.readLink(`${dir}/a`)).toBe(`${dir}/b`)
          expect(yield* fs.readLink(`${dir}/b`)).toBe("c")
        }))

      it.scoped("follow: a link loop fails with TargetResolutionFailure (ELOOP), nothing written", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.symlink("y", `${dir}/x`)
          yield* fs.symlink("x", `${dir}/y`)
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/x`, "loop"))
          assert.strictEqual(error._tag, "TargetResolutionFailure")
          if (error._tag === "TargetResolutionFailure") {
            expect(error.reason).toMatchObject({ _tag: "Other", code: "ELOOP" })
          }
          expect(yield* listTree(dir)).toEqual(["x", "y"])
        }))

      it.scoped("replace: the link becomes a regular file, its old destination is untouched", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/data.txt`, "old")
          yield* fs.symlink("data.txt", `${dir}/link.txt`)
          yield* atomic.writeFileString(`${dir}/link.txt`, "new", { symlinks: "replace" })
          const isLink = yield* fs.readLink(`${dir}/link.txt`).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
          expect(isLink).toBe(false)
          expect(yield* readText(`${dir}/link.txt`)).toBe("new")
          expect(yield* readText(`${dir}/data.txt`)).toBe("old")
        }))
    })

    // layerNode guesses that a path it replaced before is still that file
    // (createGuessed): each test changes the path behind its back, then
    // writes again, and gets what a first write would
    describe("a path written before, changed since", () => {
      it.scoped("now a link to a file elsewhere: the link is followed and stays", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.makeDirectory(`${dir}/real`)
          yield* atomic.writeFileString(`${dir}/p`, "first")
          yield* fs.writeFileString(`${dir}/real/data`, "old")
          yield* fs.remove(`${dir}/p`)
          yield* fs.symlink("real/data", `${dir}/p`)
          yield* atomic.writeFileString(`${dir}/p`, "second")
          expect(yield* fs.readLink(`${dir}/p`)).toBe("real/data")
          expect(yield* readText(`${dir}/real/data`)).toBe("second")
          expect(yield* listTree(dir)).toEqual(["p", "real", "real/data"])
        }))

      it.scoped("now another file: its mode is kept", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* atomic.writeFileString(`${dir}/p`, "first")
          yield* fs.writeFileString(`${dir}/other`, "other")
          yield* fs.chmod(`${dir}/other`, 0o640)
          yield* fs.rename(`${dir}/other`, `${dir}/p`)
          yield* atomic.writeFileString(`${dir}/p`, "second")
          expect(yield* readText(`${dir}/p`)).toBe("second")
          expect((yield* fs.stat(`${dir}/p`)).mode & 0o7777).toBe(0o640)
          expect(yield* listTree(dir)).toEqual(["p"])
        }))

      it.scoped("mode narrowed: the temporary file never holds content with the wider mode", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/p`, "old")
          yield* fs.chmod(`${dir}/p`, 0o644)
          yield* atomic.writeFileString(`${dir}/p`, "first")
          yield* fs.chmod(`${dir}/p`, 0o600)
          // the second chunk is made once the first is in the temporary file
          const seen: Array<number> = []
          const second = Effect.gen(function*() {
            const temps = yield* tempFilesUnder(dir)
            for (const temp of temps) seen.push((yield* fs.stat(`${dir}/${temp}`)).mode & 0o7777)
            return bytes("-tail")
          })
          yield* atomic.writeStream(`${dir}/p`, Stream.concat(Stream.make(bytes("secret")), Stream.fromEffect(second)))
          expect(seen).toEqual([0o600])
          expect(yield* readText(`${dir}/p`)).toBe("secret-tail")
          expect((yield* fs.stat(`${dir}/p`)).mode & 0o7777).toBe(0o600)
        }))

      it.scoped("mode widened: the new file has the wider mode", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* atomic.writeFileString(`${dir}/p`, "first", { mode: 0o600 })
          yield* fs.chmod(`${dir}/p`, 0o664)
          yield* atomic.writeFileString(`${dir}/p`, "second")
          expect((yield* fs.stat(`${dir}/p`)).mode & 0o7777).toBe(0o664)
        }))

      it.scoped("now a directory: TargetResolutionFailure(IsDirectory), no temporary file left", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* atomic.writeFileString(`${dir}/p`, "first")
          yield* fs.remove(`${dir}/p`)
          yield* fs.makeDirectory(`${dir}/p`)
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/p`, "second"))
          expect(error._tag).toBe("TargetResolutionFailure")
          expect(yield* listTree(dir)).toEqual(["p"])
        }))

      it.scoped("its directory removed: created again", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* atomic.writeFileString(`${dir}/d/p`, "first")
          yield* fs.remove(`${dir}/d`, { recursive: true })
          yield* atomic.writeFileString(`${dir}/d/p`, "second")
          expect(yield* readText(`${dir}/d/p`)).toBe("second")
          expect(yield* listTree(dir)).toEqual(["d", "d/p"])
        }))
    })

    describe("mode and owner", () => {
      it.scoped("a new file gets 0o666 minus umask", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* atomic.writeFileString(`${dir}/f`, "x")
          const mask = process.umask()
          expect((yield* fs.stat(`${dir}/f`)).mode & 0o7777).toBe(0o666 & ~mask)
        }))

      it.scoped("keeps the existing file's mode", () =>
        Effect.gen(function*() {
          const dir = yield* tempDirectory
          for (const mode of [0o640, 0o600, 0o755, 0o444]) {
            yield* replaceKeepsMode(`${dir}/m${mode.toString(8)}`, mode)
          }
        }))

      it.scoped("bits the umask takes away, and set-user-ID, set-group-ID and sticky bits, are set after the create", () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* Effect.acquireRelease(
            Effect.sync(() => process.umask(0o027)),
            (previous) => Effect.sync(() => process.umask(previous))
          )
          // a layer built now: it reads the mask once, when it is built
          yield* Effect.provide(
            Effect.gen(function*() {
              const atomic = yield* AtomicFile
              // asked for: group and other bits a create under umask 027 cannot give
              yield* atomic.writeFileString(`${dir}/asked`, "new", { mode: 0o666 })
              expect((yield* fs.stat(`${dir}/asked`)).mode & 0o7777).toBe(0o666)
              // kept: the replaced file's mode, special bits included
              for (const mode of [0o4755, 0o2750, 0o1777, 0o664]) {
                yield* replaceKeepsMode(`${dir}/kept${mode.toString(8)}`, mode)
              }
              // new: 0o666 minus the mask
              yield* atomic.writeFileString(`${dir}/new`, "new")
              expect((yield* fs.stat(`${dir}/new`)).mode & 0o7777).toBe(0o640)
            }),
            Layer.fresh(live)
          )
        }))

      it.scoped("the umask is read when the layer is built, never while writing (reading it sets it to 0 for a moment)", () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          // process.umask() with no argument sets the mask to 0 for a moment:
          // a file the thread pool creates meanwhile gets every permission bit
          const reads = { count: 0 }
          const original = process.umask
          yield* Effect.acquireRelease(
            Effect.sync(() => {
              process.umask = ((mask?: string | number) => {
                if (mask === undefined) reads.count++
                return mask === undefined ? original() : original(mask)
              }) as typeof process.umask
            }),
            () => Effect.sync(() => (process.umask = original))
          )
          yield* Effect.provide(
            Effect.gen(function*() {
              const atomic = yield* AtomicFile
              const built = reads.count
              yield* Effect.forEach(
                Array.from({ length: 20 }, (_, i) => `${dir}/f${i}`),
                (file) => atomic.writeFileString(file, "x"),
                { concurrency: "unbounded", discard: true }
              )
              yield* fs.writeFileString(`${dir}/old`, "old")
              yield* fs.chmod(`${dir}/old`, 0o664)
              yield* atomic.writeFileString(`${dir}/old`, "new")
              yield* atomic.writeFile(`${dir}/stream`, new Uint8Array(3), { mode: 0o600 })
              yield* atomic.writeStream(`${dir}/stream`, Stream.make(new Uint8Array(3)))
              expect(reads.count - built).toBe(0)
              // where /proc/self/status gives the mask, not even the build reads it that way
              if ((yield* Effect.option(fs.readFileString("/proc/self/status"))).pipe(Option.isSome)) {
                expect(built).toBe(0)
              }
              expect((yield* fs.stat(`${dir}/old`)).mode & 0o7777).toBe(0o664)
            }),
            Layer.fresh(live)
          )
        }))

      it.scoped("an explicit mode wins over the existing one", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/f`, "old")
          yield* fs.chmod(`${dir}/f`, 0o644)
          yield* atomic.writeFileString(`${dir}/f`, "new", { mode: 0o600 })
          expect((yield* fs.stat(`${dir}/f`)).mode & 0o7777).toBe(0o600)
          yield* atomic.writeFileString(`${dir}/g`, "new", { mode: 0o751 })
          expect((yield* fs.stat(`${dir}/g`)).mode & 0o7777).toBe(0o751)
        }))

      it.scoped.skipIf(!isRoot)("keeps the existing file's owner (root only)", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/owned`, "old")
          yield* fs.chown(`${dir}/owned`, 65534, 65534)
          yield* atomic.writeFileString(`${dir}/owned`, "new")
          const info = yield* fs.stat(`${dir}/owned`)
          expect(yield* readText(`${dir}/owned`)).toBe("new")
          expect([info.uid._tag === "Some" && info.uid.value, info.gid._tag === "Some" && info.gid.value]).toEqual([
            65534,
            65534
          ])
        }))
    })

    describe("invalid input", () => {
      it.scoped("empty, whitespace-only and NUL paths fail with InvalidInput and touch nothing", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          for (const bad of ["", "   ", "\t\n", `${dir}/a\0b`]) {
            const error = yield* Effect.flip(atomic.writeFileString(bad, "x"))
            assert.strictEqual(error._tag, "InvalidInput")
            expect(formatError(error)).toContain("nothing was written")
          }
          expect(yield* listTree(dir)).toEqual([])
        }))

      it.scoped("a parent that is a regular file: DirectoryCreationFailure(NotDirectory)", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/file`, "I am a file")
          for (const target of [`${dir}/file/child`, `${dir}/file/deeper/child`]) {
            const error = yield* Effect.flip(atomic.writeFileString(target, "x"))
            assert.strictEqual(error._tag, "DirectoryCreationFailure")
            if (error._tag === "DirectoryCreationFailure") {
              expect(error.reason._tag).toBe("NotDirectory")
            }
          }
          expect(yield* readText(`${dir}/file`)).toBe("I am a file")
          expect(yield* listTree(dir)).toEqual(["file"])
        }))

      it.scoped("createParents: false with a missing directory: DirectoryCreationFailure(NotFound)", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/missing/f`, "x", { createParents: false }))
          assert.strictEqual(error._tag, "DirectoryCreationFailure")
          if (error._tag === "DirectoryCreationFailure") {
            expect(error.reason._tag).toBe("NotFound")
            expect(error.directory).toBe(`${dir}/missing`)
          }
          expect(yield* listTree(dir)).toEqual([])
        }))

      it.scoped("the target is a directory: TargetResolutionFailure(IsDirectory), directory untouched", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.makeDirectory(`${dir}/d`)
          yield* fs.writeFileString(`${dir}/d/inside`, "keep")
          const error = yield* Effect.flip(atomic.writeFileString(`${dir}/d`, "x"))
          assert.strictEqual(error._tag, "TargetResolutionFailure")
          if (error._tag === "TargetResolutionFailure") {
            expect(error.reason._tag).toBe("IsDirectory")
          }
          expect(yield* listTree(dir)).toEqual(["d", "d/inside"])
          expect(yield* readText(`${dir}/d/inside`)).toBe("keep")
        }))

      it.scoped("a directory appearing at the target mid-write: RenameFailure, no temp left", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          const target = `${dir}/t`
          // the stream's last step puts a non-empty directory where the file goes
          const stream = Stream.concat(
            Stream.make(bytes("data")),
            Stream.fromEffect(
              Effect.zipRight(fs.makeDirectory(`${target}/sub`, { recursive: true }), Effect.succeed(bytes("!")))
            )
          )
          const error = yield* Effect.flip(atomic.writeStream(target, stream))
          assert.strictEqual(error._tag, "RenameFailure")
          if (error._tag === "RenameFailure") {
            expect(["IsDirectory", "Other"]).toContain(error.reason._tag)
            expect(formatError(error)).toContain("the target is unchanged")
          }
          expect(yield* listTree(dir)).toEqual(["t", "t/sub"])
        }))
    })

    describe("failures leave the target unchanged and no temp file", () => {
      it.scoped("a failing stream: the stream's own error, target unchanged", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/f`, "old")
          const stream = Stream.concat(Stream.make(bytes("partial new")), Stream.fail("source broke" as const))
          const error = yield* Effect.flip(atomic.writeStream(`${dir}/f`, stream))
          expect(error).toBe("source broke")
          expect(yield* readText(`${dir}/f`)).toBe("old")
          expect(yield* listTree(dir)).toEqual(["f"])
        }))

      it.scoped("a defect in the stream: target unchanged, no temp", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/f`, "old")
          const stream = Stream.concat(Stream.make(bytes("partial")), Stream.die(new Error("bug")))
          const exit = yield* Effect.exit(atomic.writeStream(`${dir}/f`, stream))
          expect(Exit.isFailure(exit) && !Exit.isInterrupted(exit)).toBe(true)
          expect(yield* readText(`${dir}/f`)).toBe("old")
          expect(yield* listTree(dir)).toEqual(["f"])
        }))

      it.scoped("interruption in the middle of a write: target unchanged, temp removed", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          yield* fs.writeFileString(`${dir}/f`, "old")
          const firstChunkWritten = yield* Deferred.make<void>()
          const stream = Stream.make(new Uint8Array(64 * 1024).fill(65)).pipe(
            Stream.concat(Stream.fromEffect(Deferred.succeed(firstChunkWritten, undefined)).pipe(Stream.drain)),
            Stream.concat(Stream.never)
          )
          const fiber = yield* Effect.fork(atomic.writeStream(`${dir}/f`, stream))
          yield* Deferred.await(firstChunkWritten)
          // the temp file exists and holds the first chunk: we are mid-write
          const temps = yield* tempFilesUnder(dir)
          expect(temps.length).toBe(1)
          expect(Number((yield* fs.stat(`${dir}/${temps[0]}`)).size)).toBe(64 * 1024)
          const exit = yield* Fiber.interrupt(fiber)
          expect(Exit.isInterrupted(exit)).toBe(true)
          expect(yield* readText(`${dir}/f`)).toBe("old")
          expect(yield* listTree(dir)).toEqual(["f"])
        }))

      it.scoped.skipIf(!isRoot)(
        "permission denied as an unprivileged user: TempWriteFailure(PermissionDenied) (root only)",
        () =>
          Effect.gen(function*() {
            const atomic = yield* AtomicFile
            const fs = yield* FileSystem.FileSystem
            const dir = yield* tempDirectory
            yield* fs.chmod(dir, 0o755)
            yield* fs.makeDirectory(`${dir}/locked`, { mode: 0o755 })
            yield* fs.writeFileString(`${dir}/locked/f`, "old")
            yield* fs.chmod(`${dir}/locked/f`, 0o666)
            const error = yield* asNobody(Effect.flip(atomic.writeFileString(`${dir}/locked/f`, "new")))
            assert.strictEqual(error._tag, "TempWriteFailure")
            if (error._tag === "TempWriteFailure") {
              expect(error.reason).toMatchObject({ _tag: "PermissionDenied", code: "EACCES" })
            }
            // a missing parent under a directory nobody may write to
            const nested = yield* asNobody(Effect.flip(atomic.writeFileString(`${dir}/locked/sub/f`, "new")))
            assert.strictEqual(nested._tag, "DirectoryCreationFailure")
            if (nested._tag === "DirectoryCreationFailure") {
              expect(nested.reason._tag).toBe("PermissionDenied")
            }
            expect(yield* readText(`${dir}/locked/f`)).toBe("old")
            expect(yield* listTree(dir)).toEqual(["locked", "locked/f"])
          })
      )
    })

    describe("streams", () => {
      it.scoped("a 256 MiB stream is written with bounded memory and exact bytes", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          const chunkSize = 64 * 1024
          const chunks = (256 * 1024 * 1024) / chunkSize
          const expected = createHash("sha256")
          // one number per chunk, so each 64 KiB buffer is made only when pulled
          const stream = Stream.range(0, chunks - 1, 1).pipe(Stream.map((i) => {
            const chunk = new Uint8Array(chunkSize).fill(i & 0xff)
            chunk[0] = i >> 8
            expected.update(chunk)
            return chunk
          }))
          if (global.gc) global.gc()
          const baseline = process.memoryUsage().rss
          let peak = baseline
          const sampler = setInterval(() => {
            peak = Math.max(peak, process.memoryUsage().rss)
          }, 10)
          yield* atomic.writeStream(`${dir}/big.bin`, stream, { durability: "file" }).pipe(
            Effect.ensuring(Effect.sync(() => clearInterval(sampler)))
          )
          peak = Math.max(peak, process.memoryUsage().rss)
          const info = yield* fs.stat(`${dir}/big.bin`)
          expect(Number(info.size)).toBe(256 * 1024 * 1024)
          const actual = createHash("sha256")
          yield* Stream.runForEach(fs.stream(`${dir}/big.bin`, { chunkSize: 1024 * 1024 }), (chunk) =>
            Effect.sync(() => actual.update(chunk)))
          expect(actual.digest("hex")).toBe(expected.digest("hex"))
          // a 256 MiB buffer would show up here; chunks of 64 KiB do not
          expect(peak - baseline).toBeLessThan(96 * 1024 * 1024)
          expect(yield* listTree(dir)).toEqual(["big.bin"])
        }), 120_000)

      it.scoped("the stream's resources are released before writeStream returns, whether it succeeds or fails", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          const events: Array<string> = []
          const source = (tail: Stream.Stream<Uint8Array, "source broke">) =>
            Stream.acquireRelease(
              Effect.sync(() => events.push("acquire")),
              () => Effect.sync(() => events.push("release"))
            ).pipe(Stream.flatMap(() => Stream.concat(Stream.make(bytes("a"), bytes("b")), tail)))
          yield* atomic.writeStream(`${dir}/ok`, source(Stream.empty))
          expect(events).toEqual(["acquire", "release"])
          expect(yield* readText(`${dir}/ok`)).toBe("ab")
          const error = yield* Effect.flip(atomic.writeStream(`${dir}/ok`, source(Stream.fail("source broke"))))
          expect(error).toBe("source broke")
          expect(events).toEqual(["acquire", "release", "acquire", "release"])
          expect(yield* readText(`${dir}/ok`)).toBe("ab")
          expect(yield* listTree(dir)).toEqual(["ok"])
        }))

      it.scoped("a stream of many small chunks concatenates in order", () =>
        Effect.gen(function*() {
          const atomic = yield* AtomicFile
          const dir = yield* tempDirectory
          const stream = Stream.fromChunk(Chunk.range(1, 1000)).pipe(Stream.map((n) => bytes(`${n},`)))
          yield* atomic.writeStream(`${dir}/s`, stream)
          expect(yield* readText(`${dir}/s`)).toBe(Array.from({ length: 1000 }, (_, i) => `${i + 1},`).join(""))
        }))
    })
  })
}
