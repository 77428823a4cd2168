/**
 * Real errors from a real kernel (root only: mounts, setpriv, prlimit): each
 * case makes the kernel refuse a write for a real reason and checks the
 * typed error and its reason, that the target is untouched, and that no
 * temporary file is left. Every mount is undone when its test ends, also on
 * failure (scope finalizers, `umount -l`).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { reportSection, table } from "../../../../test-support/reliabilityReport.js"
import { AtomicFile } from "../../src/AtomicFile.js"
import { requireBuild, spawnScript } from "../childProcess.js"
import { bindMountScoped, isRoot, listTree, LiveLayer, tempDirectory, tempFilesUnder, tmpfsScoped } from "../support.js"

if (!isRoot) {
  console.warn(
    "atomic-file: not root, so the real-kernel error cases are skipped " +
      "(they need mount, setpriv and prlimit); the fault sweeps inject the same errnos on a test FileSystem"
  )
}

interface Observed {
  readonly _tag: string
  readonly reason: { readonly _tag: string; readonly code: string }
}

/**
 * Writes argv[1] with AtomicFile.writeFileString and prints the error as JSON.
 * With argv[2] = "fill", it first opens /dev/null until the descriptor limit.
 */
const writerScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Cause, Effect, Layer, ManagedRuntime, Option } from "effect"
  import { AtomicFile } from DIST
  import { openSync } from "node:fs"
  const [file, fill] = process.argv.slice(1)
  const runtime = ManagedRuntime.make(AtomicFile.layerNode.pipe(Layer.provide(NodeContext.layer)))
  await runtime.runPromise(Effect.void)
  let opened = 0
  if (fill === "fill") {
    try { for (;;) { openSync("/dev/null"); opened++ } } catch (error) { if (error.code !== "EMFILE") throw error }
  }
  const exit = await runtime.runPromiseExit(
    Effect.flatMap(AtomicFile.AtomicFile, (atomic) => atomic.writeFileString(file, "new"))
  )
  const error = exit._tag === "Failure" ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
  console.log(JSON.stringify({ uid: process.getuid(), opened, error: error === undefined ? null : { _tag: error._tag, reason: error.reason } }))
  process.exit(0)
`

/** Runs the writer child on `target` under `via`; its error. */
const writeInChild = (target: string, via: ReadonlyArray<string>, fill = false) =>
  Effect.gen(function*() {
    yield* requireBuild
    // a child under another user must be able to read the checkout (its
    // bundle is in build/, os-lock in node_modules): say so plainly if not
    const packageJson = fileURLToPath(new URL("../../package.json", import.meta.url))
    const [command, ...rest] = via
    if (command !== undefined && spawnSync(command, [...rest, "test", "-r", packageJson]).status !== 0) {
      return yield* Effect.dieMessage(
        `${via.join(" ")} cannot read ${packageJson}: the checkout must be readable by that user ` +
          "(a directory made by mktemp -d is 0700: chmod 755 it)"
      )
    }
    // bundled: one file to load, so that a low descriptor limit leaves Node room to start
    const child = yield* spawnScript(writerScript, fill ? [target, "fill"] : [target], { via })
    const line = yield* child.waitForLine((line) => line.startsWith("{"))
    const result = JSON.parse(line) as { uid: number; opened: number; error: Observed | null }
    if (result.error === null) return yield* Effect.dieMessage(`the child's write succeeded: ${line}`)
    return { error: result.error, detail: `uid ${result.uid}, ${result.opened} descriptors filled` }
  })

/** Writes `target` in this process; its error. */
const writeHere = (target: string, data: Uint8Array) =>
  Effect.flatMap(
    AtomicFile,
    (atomic) =>
      Effect.flatMap(Effect.exit(atomic.writeFile(target, data)), (exit) =>
        Exit.isSuccess(exit)
          ? Effect.dieMessage(`the write of ${target} succeeded`)
          : Effect.succeed({ error: Option.getOrThrow(Cause.failureOption(exit.cause)) as Observed, detail: "" }))
  )

interface Case {
  readonly errno: string
  readonly how: string
  /** the expected error tag, and the acceptable codes of its reason */
  readonly tag: string
  readonly reason: string
  readonly codes: ReadonlyArray<string>
  /** makes the situation in `dir`; returns the directory to check for temp files, the target, and the failing write */
  readonly arrange: (dir: string) => Effect.Effect<
    {
      readonly directory: string
      readonly target: string
      readonly write: Effect.Effect<
        { readonly error: Observed; readonly detail: string },
        never,
        Scope.Scope | AtomicFile
      >
    },
    unknown,
    Scope.Scope | FileSystem.FileSystem
  >
}

const old = (file: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.writeFileString(file, "old"))

const cases: ReadonlyArray<Case> = [
  {
    errno: "ENOSPC",
    how: "a 256 KiB tmpfs, a 1 MiB write",
    tag: "TempWriteFailure",
    reason: "DiskFull",
    codes: ["ENOSPC"],
    arrange: () =>
      Effect.gen(function*() {
        const mount = yield* tmpfsScoped("256k")
        yield* old(`${mount}/f`)
        return { directory: mount, target: `${mount}/f`, write: writeHere(`${mount}/f`, new Uint8Array(1 << 20)) }
      })
  },
  {
    errno: "EROFS",
    how: "a read-only bind mount of the target's directory",
    tag: "TempWriteFailure",
    reason: "ReadOnlyFileSystem",
    codes: ["EROFS"],
    arrange: (dir) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.makeDirectory(`${dir}/ro`)
        yield* old(`${dir}/ro/f`)
        yield* bindMountScoped(`${dir}/ro`, `${dir}/ro`, { readOnly: true })
        return { directory: `${dir}/ro`, target: `${dir}/ro/f`, write: writeHere(`${dir}/ro/f`, new Uint8Array(8)) }
      })
  },
  {
    errno: "EACCES",
    how:
      "the write in a child run by `setpriv --reuid=65534 --regid=65534 --clear-groups`, in a directory of root's (0755)",
    tag: "TempWriteFailure",
    reason: "PermissionDenied",
    codes: ["EACCES"],
    arrange: (dir) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.chmod(dir, 0o755)
        yield* fs.makeDirectory(`${dir}/locked`, { mode: 0o755 })
        yield* old(`${dir}/locked/f`)
        // the file itself is writable by anyone: only the directory refuses the temp file
        yield* fs.chmod(`${dir}/locked/f`, 0o666)
        return {
          directory: `${dir}/locked`,
          target: `${dir}/locked/f`,
          write: writeInChild(`${dir}/locked/f`, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        }
      })
  },
  {
    errno: "ENOTDIR",
    how: "a target below a regular file (`plain/f`)",
    tag: "DirectoryCreationFailure",
    reason: "NotDirectory",
    codes: ["ENOTDIR"],
    arrange: (dir) =>
      Effect.gen(function*() {
        yield* old(`${dir}/plain`)
        return { directory: dir, target: `${dir}/plain`, write: writeHere(`${dir}/plain/f`, new Uint8Array(8)) }
      })
  },
  {
    errno: "EISDIR",
    how: "a target that is a directory",
    tag: "TargetResolutionFailure",
    reason: "IsDirectory",
    codes: ["EISDIR"],
    arrange: (dir) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.makeDirectory(`${dir}/d`)
        yield* old(`${dir}/d/inside`)
        return { directory: dir, target: `${dir}/d/inside`, write: writeHere(`${dir}/d`, new Uint8Array(8)) }
      })
  },
  {
    errno: "ENAMETOOLONG",
    how: "a target name of 300 bytes (NAME_MAX is 255)",
    tag: "TargetResolutionFailure",
    reason: "NameTooLong",
    codes: ["ENAMETOOLONG"],
    arrange: (dir) =>
      Effect.gen(function*() {
        yield* old(`${dir}/f`)
        return { directory: dir, target: `${dir}/f`, write: writeHere(`${dir}/${"n".repeat(300)}`, new Uint8Array(8)) }
      })
  },
  {
    errno: "EMFILE",
    how: "the write in a child run by `prlimit --nofile=128` that first opened descriptors up to the limit",
    tag: "TempWriteFailure",
    reason: "TooManyOpenFiles",
    codes: ["EMFILE"],
    arrange: (dir) =>
      Effect.gen(function*() {
        yield* old(`${dir}/f`)
        return {
          directory: dir,
          target: `${dir}/f`,
          write: writeInChild(`${dir}/f`, ["prlimit", "--nofile=128"], true)
        }
      })
  },
  {
    errno: "EBUSY or EXDEV",
    how: "a target that is a bind-mounted single file (a mount point cannot be renamed over)",
    tag: "RenameFailure",
    reason: "Other or CrossDevice",
    codes: ["EBUSY", "EXDEV"],
    arrange: (dir) =>
      Effect.gen(function*() {
        const fs = yield* FileSystem.FileSystem
        yield* fs.makeDirectory(`${dir}/source`)
        yield* fs.writeFileString(`${dir}/source/file`, "mounted")
        yield* fs.makeDirectory(`${dir}/target`)
        yield* old(`${dir}/target/f`)
        yield* bindMountScoped(`${dir}/source/file`, `${dir}/target/f`)
        return {
          directory: `${dir}/target`,
          target: `${dir}/target/f`,
          write: writeHere(`${dir}/target/f`, new Uint8Array(8))
        }
      })
  }
]

const rows: Array<ReadonlyArray<string>> = []

describe("real errors from a real kernel (root only)", () => {
  for (const c of cases) {
    it.scoped.skipIf(!isRoot)(
      `${c.errno}: ${c.how}: ${c.tag}(${c.reason}), target untouched, no temp file`,
      () =>
        Effect.gen(function*() {
          const fs = yield* FileSystem.FileSystem
          const dir = yield* tempDirectory
          const { directory, target, write } = yield* c.arrange(dir)
          const before = yield* fs.readFile(target)
          const treeBefore = yield* listTree(directory)
          const { error, detail } = yield* write
          console.info(`${c.errno}: ${error._tag}(${error.reason._tag}, ${error.reason.code}) ${detail}`)
          expect(error._tag).toBe(c.tag)
          expect(c.codes).toContain(error.reason.code)
          if (c.reason.includes(" or ")) expect(c.reason.split(" or ")).toContain(error.reason._tag)
          else expect(error.reason._tag).toBe(c.reason)
          expect(yield* fs.readFile(target)).toEqual(before)
          expect(yield* tempFilesUnder(directory)).toEqual([])
          expect(yield* listTree(directory)).toEqual(treeBefore)
          rows.push([
            c.errno,
            detail === "" ? c.how : `${c.how} (${detail})`,
            `${error._tag}(${error.reason._tag}, ${error.reason.code})`,
            "untouched",
            "none"
          ])
        }).pipe(Effect.provide(LiveLayer))
    )
  }

  it.effect.skipIf(!isRoot)("reports the cases", () =>
    Effect.gen(function*() {
      expect(rows.length).toBe(cases.length)
      yield* reportSection(
        yield* AtomicFile,
        { area: "kernel-errors", title: "4. Real errors from a real kernel" },
        "1-atomic-file",
        `packages/atomic-file/test/reliability/kernelErrors.test.ts, run as root; every mount is undone when its ` +
          `case ends. ${rows.length} of ${cases.length} cases passed.\n\n` +
          table([
            "errno",
            "how the kernel was made to refuse",
            "typed error (reason, code)",
            "target",
            "temp files left"
          ], rows)
      )
    }).pipe(Effect.provide(LiveLayer)))
})
