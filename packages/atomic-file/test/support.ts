/**
 * Shared test support: layers, privileged helpers (tmpfs, dropping
 * privileges) and a FileSystem wrapper that fails chosen calls.
 */
import { NodeContext, NodePath } from "@effect/platform-node"
import { SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { execFileSync } from "node:child_process"
import { AtomicFile, layerNode } from "../src/AtomicFile.js"
import { fromFileSystem, HandlesService, withEmulatedLinkStat } from "../src/internal/handles.js"
import { parseTempName } from "../src/internal/tempName.js"

/**
 * AtomicFile over the real Node file system as Node programs use it
 * (`layerNode`: files opened with `node:fs`), with the platform beside it.
 */
export const LiveLayer = Layer.provideMerge(layerNode, NodeContext.layer)

/** The same over the platform's `FileSystem.open` (`AtomicFile.Default`). */
export const LiveDefaultLayer = Layer.provideMerge(AtomicFile.Default, NodeContext.layer)

export const isRoot = typeof process.geteuid === "function" && process.geteuid() === 0

const encoder = new TextEncoder()
export const bytes = (text: string): Uint8Array => encoder.encode(text)

/** A scoped directory under the system temp directory. */
export const tempDirectory = Effect.flatMap(
  FileSystem.FileSystem,
  (fs) => fs.makeTempDirectoryScoped({ prefix: "atomic-file-test-" })
)

/** Every entry under `directory`, recursively, as relative paths, sorted. */
export const listTree = (directory: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const entries = yield* fs.readDirectory(directory, { recursive: true })
    return entries.slice().sort()
  })

/** The temporary files of this library under `directory`, recursively. */
export const tempFilesUnder = (directory: string) =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const entries = yield* listTree(directory)
    return entries.filter((entry) => parseTempName(path.basename(entry)) !== undefined)
  })

export const readText = (file: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file))

/**
 * Mounts a tmpfs of `size` on a fresh directory for the scope, and unmounts
 * it when the scope closes, whatever happened. Fails when not root.
 */
export const tmpfsScoped = (size: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const mountPoint = yield* fs.makeTempDirectoryScoped({ prefix: "atomic-file-tmpfs-" })
    yield* Effect.acquireRelease(
      Effect.try(() => execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mountPoint])),
      () => Effect.sync(() => execFileSync("umount", ["-l", mountPoint]))
    )
    return mountPoint
  })

/**
 * Bind-mounts `source` (a file or a directory) on `target` for the scope,
 * read-only when asked, and unmounts it when the scope closes, whatever
 * happened (also when making it read-only failed). Fails when not root.
 */
export const bindMountScoped = (source: string, target: string, options?: { readonly readOnly?: boolean }) =>
  Effect.acquireRelease(
    Effect.try(() => {
      execFileSync("mount", ["--bind", source, target])
      try {
        if (options?.readOnly === true) execFileSync("mount", ["-o", "remount,bind,ro", target])
      } catch (error) {
        execFileSync("umount", ["-l", target])
        throw error
      }
    }),
    () => Effect.sync(() => execFileSync("umount", ["-l", target]))
  )

/**
 * Runs `effect` with the effective uid/gid of `nobody` (65534) and no
 * supplementary groups, then restores root's. The process's credentials
 * apply to every thread on Linux (glibc broadcasts setxid calls), so libuv's
 * thread pool runs the file system calls as `nobody` too. Test files run in
 * separate processes (vitest `pool: "forks"`), so no other file sees this.
 */
export const asNobody = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const { getgroups, setegid, seteuid, setgroups } = process
  if (!getgroups || !setegid || !seteuid || !setgroups) {
    return Effect.dieMessage("asNobody: this platform has no POSIX credentials")
  }
  return Effect.acquireUseRelease(
    Effect.sync(() => {
      const groups = getgroups()
      setgroups([])
      setegid(65534)
      seteuid(65534)
      return groups
    }),
    () => effect,
    (groups) =>
      Effect.sync(() => {
        seteuid(0)
        setegid(0)
        setgroups(groups)
      })
  )
}

/** A platform SystemError as the Node layer makes it, errno in `cause.code`. */
export const systemError = (method: string, code: string, path?: string) =>
  new SystemError({
    module: "FileSystem",
    method,
    reason: "Unknown",
    description: `${code}: injected by the test`,
    ...(path === undefined ? {} : { pathOrDescriptor: path }),
    cause: Object.assign(new Error(`${code}: injected`), { code })
  })

/**
 * The Node FileSystem with some of its methods replaced; `wrap` receives the
 * real implementation and returns the overrides. AtomicFile over it is
 * `AtomicFile.Default`, or with `direct`, runs `layerNode`'s write path
 * (`writeFile` as one chain of callbacks, `lstat` made of `readLink` and
 * `stat`) over the wrapped calls.
 */
export const wrappedFileSystem = (
  wrap: (real: FileSystem.FileSystem) => Partial<FileSystem.FileSystem>,
  options?: { readonly direct?: boolean }
): Layer.Layer<AtomicFile | FileSystem.FileSystem | Path.Path> => {
  const fsLayer = Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (real) => ({ ...real, ...wrap(real) }))
  ).pipe(Layer.provide(NodeContext.layer))
  const atomic = options?.direct === true
    ? AtomicFile.Default.pipe(Layer.provide(Layer.effect(
      HandlesService,
      Effect.map(FileSystem.FileSystem, (fs) => withEmulatedLinkStat(fromFileSystem(fs), fs))
    )))
    : AtomicFile.Default
  return Layer.provideMerge(atomic, Layer.merge(fsLayer, NodePath.layer))
}

/** A File that delegates to `file`, with some members replaced. */
export const wrapFile = (file: FileSystem.File, overrides: Partial<FileSystem.File>): FileSystem.File => ({
  [FileSystem.FileTypeId]: FileSystem.FileTypeId,
  fd: file.fd,
  stat: file.stat,
  seek: (offset, from) => file.seek(offset, from),
  sync: file.sync,
  read: (buffer) => file.read(buffer),
  readAlloc: (size) => file.readAlloc(size),
  truncate: (length) => file.truncate(length),
  write: (buffer) => file.write(buffer),
  writeAll: (buffer) => file.writeAll(buffer),
  ...overrides
})

/**
 * FileSystem overrides for `wrappedFileSystem`: files opened at paths that
 * `select` picks get `overrides` (made from the real file and its path).
 */
export const overrideOpenedFiles = (
  select: (path: string, options: FileSystem.OpenFileOptions | undefined) => boolean,
  overrides: (file: FileSystem.File, path: string) => Partial<FileSystem.File>
) =>
(real: FileSystem.FileSystem): Partial<FileSystem.FileSystem> => ({
  open: (path, options) =>
    Effect.map(real.open(path, options), (file) => select(path, options) ? wrapFile(file, overrides(file, path)) : file)
})
