/**
 * The steps of the whole-file write, one function each, in the order the
 * algorithm runs them:
 *
 * 1. `validatePath`     empty, whitespace-only or NUL → InvalidInput
 * 2. `resolveTarget`    follow symbolic links, inspect the file replaced
 * 3. `createParents`    missing parent directories (synced when durable)
 * 4. `createTempFile`   exclusive create with the final mode, in the target's directory
 * 5. `writeTemp`        every byte, short writes looped
 * 6. `syncTemp`         fsync the temporary file
 * 7. `applyModeAndOwner` the final mode, and the previous owner where allowed
 * 8. `renameTemp`       the atomic step
 * 9. `syncDirectory`    fsync the directory, so the rename survives a power cut
 */
import { type PlatformError, SystemError } from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import {
  CleanupFailure,
  DirectoryCreationFailure,
  DirectorySyncFailure,
  FileErrorReason,
  InvalidInput,
  type Operation,
  RenameFailure,
  TargetResolutionFailure,
  TempWriteFailure
} from "../AtomicFileError.js"
import { errorCode, reasonOf } from "./errno.js"
import { type FileId, type Handle, type Handles, idOf, type Pending } from "./handles.js"
import { effectiveIds, processId, umaskOf } from "./processInfo.js"
import { makeTempName } from "./tempName.js"

/** What every step needs to know. */
export interface WriteContext {
  readonly fs: FileSystem.FileSystem
  readonly path: Path.Path
  readonly operation: Operation
  /** how the temporary file and the directory are opened */
  readonly handles: Handles
  /** the file mode creation mask, read when the layer was built (`readUmask`) */
  readonly umask: number
}

/**
 * The process's file mode creation mask, read once (when a layer is built):
 * from /proc/self/status where there is one, which leaves the mask alone
 * (`umaskOf` says why that matters).
 */
export const readUmask = (fs: FileSystem.FileSystem): Effect.Effect<number> =>
  Effect.map(Effect.option(fs.readFileString("/proc/self/status")), (status) => umaskOf(Option.getOrUndefined(status)))

/** The file to replace, after symbolic links are followed. */
export interface Target {
  /** absolute path of the file that is replaced */
  readonly path: string
  readonly directory: string
  readonly base: string
  /** the file replaced, if it exists and is not a link being replaced */
  readonly existing: Option.Option<FileSystem.File.Info>
}

/**
 * A temporary file being written; `committed` turns true once renamed,
 * `closed` once its handle is closed.
 */
export interface TempFile {
  readonly path: string
  readonly handle: Handle
  committed: boolean
  closed: boolean
}

// Linux's limit on symbolic links followed in one lookup (MAXSYMLINKS).
const MAX_SYMLINK_HOPS = 40
const TEMP_NAME_ATTEMPTS = 8

// -- 1 -----------------------------------------------------------------------

/** What is wrong with `input` as a path, as the error to fail with; `undefined` when nothing is. */
export const pathProblem = (operation: Operation, input: string): InvalidInput | undefined => {
  const problem = typeof input !== "string"
    ? "the path is not a string"
    : input.length === 0
    ? "the path is empty"
    : input.trim().length === 0
    ? "the path is only whitespace"
    : input.includes("\0")
    ? "the path contains a NUL byte"
    : undefined
  return problem === undefined ? undefined : new InvalidInput({ operation, path: String(input), message: problem })
}

export const validatePath = (operation: Operation, input: string): Effect.Effect<void, InvalidInput> => {
  const problem = pathProblem(operation, input)
  return problem === undefined ? Effect.void : Effect.fail(problem)
}

// -- 2 -----------------------------------------------------------------------

/**
 * Follows symbolic links one `readlink` at a time (so a dangling link's
 * destination is still found, where `realpath` would fail), then `stat`s the
 * file replaced. With `symlinks: "replace"` the link itself is the target and
 * counts as absent: the new file gets the default mode.
 */
export const resolveTarget = (
  ctx: WriteContext,
  absolute: string,
  symlinks: "follow" | "replace",
  statOfAbsolute?: Exit.Exit<FileSystem.File.Info, PlatformError>
): Effect.Effect<Target, TargetResolutionFailure> => {
  const { fs, operation, path } = ctx
  const fail = (at: string) => (error: PlatformError) =>
    new TargetResolutionFailure({ operation, path: at, reason: reasonOf(error), cause: error })

  const follow = (current: string, hops: number): Effect.Effect<readonly [string, boolean], TargetResolutionFailure> =>
    fs.readLink(current).pipe(
      Effect.matchEffect({
        onSuccess: (link): Effect.Effect<readonly [string, boolean], TargetResolutionFailure> => {
          if (symlinks === "replace") {
            return Effect.succeed([current, true] as const)
          }
          if (hops >= MAX_SYMLINK_HOPS) {
            return Effect.fail(
              new TargetResolutionFailure({
                operation,
                path: current,
                reason: FileErrorReason.Other({ code: "ELOOP", description: "too many levels of symbolic links" })
              })
            )
          }
          return follow(path.resolve(path.dirname(current), link), hops + 1)
        },
        onFailure: (error) => {
          switch (errorCode(error)) {
            case "EINVAL": // exists and is not a link
            case "ENOENT": // does not exist yet
            case "ENOTDIR": // a parent is not a directory: createParents reports it
              return Effect.succeed([current, false] as const)
            default:
              return Effect.fail(fail(current)(error))
          }
        }
      })
    )

  return Effect.flatMap(follow(absolute, 0), ([resolved, isLink]) => {
    const target = (existing: Option.Option<FileSystem.File.Info>): Target => ({
      path: resolved,
      directory: path.dirname(resolved),
      base: path.basename(resolved),
      existing
    })
    if (isLink) {
      return Effect.succeed(target(Option.none()))
    }
    const stat = resolved === absolute && statOfAbsolute !== undefined
      ? Effect.succeed(statOfAbsolute)
      : Effect.exit(fs.stat(resolved))
    return Effect.map(Effect.flatMap(stat, (stat) => existingFrom(ctx, resolved, stat)), target)
  })
}

/**
 * The file replaced, from the `stat` of the resolved path: absent (ENOENT,
 * or ENOTDIR, which createParents reports), a file, or a directory, which is
 * never replaced.
 */
const existingFrom = (
  ctx: WriteContext,
  resolved: string,
  stat: Exit.Exit<FileSystem.File.Info, PlatformError>
): Effect.Effect<Option.Option<FileSystem.File.Info>, TargetResolutionFailure> =>
  Effect.matchEffect(stat, {
    onSuccess: (info) =>
      info.type === "Directory"
        ? Effect.fail(
          new TargetResolutionFailure({
            operation: ctx.operation,
            path: resolved,
            reason: FileErrorReason.IsDirectory({ code: "EISDIR" })
          })
        )
        : Effect.succeed(Option.some(info)),
    onFailure: (error) => {
      const code = errorCode(error)
      return code === "ENOENT" || code === "ENOTDIR"
        ? Effect.succeed(Option.none())
        : Effect.fail(
          new TargetResolutionFailure({
            operation: ctx.operation,
            path: resolved,
            reason: reasonOf(error),
            cause: error
          })
        )
    }
  })

/**
 * A bounded memory by path (the oldest entry goes first), so that a writer
 * of many paths stays small.
 */
export interface PathMemory<A> {
  readonly get: (path: string) => A | undefined
  readonly set: (path: string, value: A) => void
}

const makePathMemory = <A>(capacity: number): PathMemory<A> => {
  const memory = new Map<string, A>()
  return {
    get: (path) => memory.get(path),
    set: (path, value) => {
      memory.delete(path)
      memory.set(path, value)
      if (memory.size > capacity) {
        const oldest = memory.keys().next()
        if (oldest.done !== true) memory.delete(oldest.value)
      }
    }
  }
}

/** The files this writer renamed into place (their identity), by path. */
export type KnownFiles = PathMemory<FileId>

export const makeKnownFiles = (capacity = 4096): KnownFiles => makePathMemory(capacity)

/** The mode each path's temporary file was created with last, for `createGuessed`. */
export const makeCreateModes = (capacity = 4096): PathMemory<number> => makePathMemory(capacity)

/**
 * `resolveTarget`, without the `readlink` in the common case: when `stat`
 * (which follows links) finds the very file (device and inode) this writer
 * renamed into place at this path, the path is that file, not a link to it,
 * unless someone since moved that file away and put a link to it in its
 * place (then the link is replaced, as with `symlinks: "replace"`). A
 * `readlink` of a regular file fails with EINVAL, and the platform builds a
 * `SystemError` for it, whose schema validation costs more than any of the
 * write's file system calls. Otherwise, and for a path not written before,
 * the links are followed one `readlink` at a time; the `stat` made here is
 * reused when the path is not a link.
 */
export const resolveKnownTarget = (
  ctx: WriteContext,
  absolute: string,
  symlinks: "follow" | "replace",
  known: KnownFiles
): Effect.Effect<Target, TargetResolutionFailure> =>
  Effect.flatMap(Effect.exit(ctx.fs.stat(absolute)), (stat) => {
    const id = known.get(absolute)
    if (id !== undefined && Exit.isSuccess(stat)) {
      const found = idOf(stat.value)
      if (found !== undefined && found.dev === id.dev && found.ino === id.ino) {
        return Effect.map(existingFrom(ctx, absolute, stat), (existing) => ({
          path: absolute,
          directory: ctx.path.dirname(absolute),
          base: ctx.path.basename(absolute),
          existing
        }))
      }
    }
    return resolveTarget(ctx, absolute, symlinks, stat)
  })

// -- 3 -----------------------------------------------------------------------

/**
 * Creates `directory` and its missing ancestors, one level at a time, so it
 * knows which ones it created. Tolerates a concurrent creator (EEXIST). When
 * `durable`, syncs the parent of every directory it created, so that the new
 * entries survive a power cut; the last one's own entry for the target is
 * synced after the rename.
 */
export const createParents = (
  ctx: WriteContext,
  target: Target,
  durable: boolean
): Effect.Effect<ReadonlyArray<string>, DirectoryCreationFailure> => {
  const { fs, operation, path } = ctx
  const fail = (directory: string, reason: FileErrorReason, cause?: unknown) =>
    new DirectoryCreationFailure({ operation, path: target.path, directory, reason, ...(cause ? { cause } : {}) })

  const ensure = (directory: string): Effect.Effect<Array<string>, DirectoryCreationFailure> =>
    fs.makeDirectory(directory).pipe(
      Effect.as([directory]),
      Effect.catchAll((error) => {
        switch (errorCode(error)) {
          case "EEXIST":
            return fs.stat(directory).pipe(
              Effect.mapError((cause) => fail(directory, reasonOf(cause), cause)),
              Effect.flatMap((info) =>
                info.type === "Directory"
                  ? Effect.succeed([])
                  : Effect.fail(fail(directory, FileErrorReason.NotDirectory({ code: "ENOTDIR" })))
              )
            )
          case "ENOENT": {
            const parent = path.dirname(directory)
            if (parent === directory) {
              return Effect.fail(fail(directory, reasonOf(error), error))
            }
            return Effect.flatMap(
              ensure(parent),
              (created) => Effect.map(ensure(directory), (more) => [...created, ...more])
            )
          }
          default:
            return Effect.fail(fail(directory, reasonOf(error), error))
        }
      })
    )

  return Effect.tap(ensure(target.directory), (created) =>
    durable
      ? Effect.forEach(
        created,
        (directory) =>
          Effect.mapError(
            syncDirectoryRaw(ctx, path.dirname(directory)),
            (error) => fail(path.dirname(directory), reasonOf(error), error)
          ),
        { concurrency: "unbounded", discard: true }
      )
      : Effect.void)
}

// -- 4 -----------------------------------------------------------------------

/**
 * The new file's mode: the one asked for, else the replaced file's, else
 * what a plain create gives (0o666 minus umask); and the mode to create the
 * temporary file with: the same permission bits (the umask then applies),
 * never the set-user-ID, set-group-ID or sticky bits, which `applyModeAndOwner`
 * sets once the content is complete.
 */
export const modeOf = (
  target: Target,
  requestedMode: number | undefined,
  mask: number
): { readonly mode: number; readonly createMode: number; readonly createdMode: number; readonly mask: number } => {
  const mode = requestedMode ?? Option.match(target.existing, {
    onNone: () => 0o666 & ~mask,
    onSome: (info) => info.mode & 0o7777
  })
  const createMode = mode & 0o777
  return { mode, createMode, createdMode: createMode & ~mask, mask }
}

const closeHandleQuietly = (handle: Handle, what: string) =>
  Effect.catchAllCause(handle.close, (cause) => Effect.logWarning(`closing ${what} failed`, cause))

/**
 * Creates the temporary file with an exclusive create (`wx`) and
 * `createMode`. Not scoped: `withTempFile` releases it.
 *
 * A missing directory shows up here as ENOENT, so existing directories cost
 * no extra call; the parents are created then and the create retried once.
 */
export const createTempFile = (
  ctx: WriteContext,
  target: Target,
  options: { readonly createParents: boolean; readonly durable: boolean; readonly createMode: number }
): Effect.Effect<TempFile, TempWriteFailure | DirectoryCreationFailure> => {
  const { operation, path } = ctx

  const attempt = (
    tries: number,
    parentsCreated: boolean
  ): Effect.Effect<TempFile, TempWriteFailure | DirectoryCreationFailure> =>
    Effect.suspend(() => {
      const tempPath = path.join(target.directory, makeTempName(target.base, processId()))
      return ctx.handles.create(tempPath, options.createMode).pipe(
        Effect.map((handle): TempFile => ({ path: tempPath, handle, committed: false, closed: false })),
        Effect.catchAll((error) => handleOpenError(error, tempPath, tries, parentsCreated))
      )
    })

  // the target's directory is missing (createParents off) or is not one
  const directoryFailure = (error: PlatformError) =>
    Effect.fail(
      new DirectoryCreationFailure({
        operation,
        path: target.path,
        directory: target.directory,
        reason: reasonOf(error),
        cause: error
      })
    )

  const handleOpenError = (
    error: PlatformError,
    tempPath: string,
    tries: number,
    parentsCreated: boolean
  ): Effect.Effect<TempFile, TempWriteFailure | DirectoryCreationFailure> => {
    switch (errorCode(error)) {
      case "EEXIST":
        if (tries + 1 < TEMP_NAME_ATTEMPTS) {
          return attempt(tries + 1, parentsCreated)
        }
        break
      case "ENOENT":
        if (!options.createParents) {
          return directoryFailure(error)
        }
        if (!parentsCreated) {
          return Effect.zipRight(createParents(ctx, target, options.durable), attempt(tries, true))
        }
        break
      case "ENOTDIR":
        return directoryFailure(error)
    }
    return Effect.fail(
      new TempWriteFailure({ operation, path: target.path, tempPath, reason: reasonOf(error), cause: error })
    )
  }

  return attempt(0, false)
}

/** Closes the temporary file, once; a failure to close is logged. */
export const closeTemp = (temp: TempFile): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (temp.closed) return Effect.void
    temp.closed = true
    return closeHandleQuietly(temp.handle, "a temporary file")
  })

/**
 * Runs `use` with a new temporary file, and releases the file whatever
 * happens (failure, defect or interruption): closed, and removed unless the
 * rename committed it. A failed removal is logged as a `CleanupFailure`; the
 * primary error stays.
 */
export const withTempFile = <A, E, R>(
  ctx: WriteContext,
  target: Target,
  options: { readonly createParents: boolean; readonly durable: boolean; readonly createMode: number },
  use: (temp: TempFile) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | TempWriteFailure | DirectoryCreationFailure, R> =>
  Effect.acquireUseRelease(createTempFile(ctx, target, options), use, releaseTemp(ctx, target))

/** `withTempFile` for a temporary file created already (`createGuessed`). */
export const useTempFile = <A, E, R>(
  ctx: WriteContext,
  target: Target,
  temp: TempFile,
  use: (temp: TempFile) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => Effect.acquireUseRelease(Effect.succeed(temp), use, releaseTemp(ctx, target))

/** Closes the temporary file, and removes it unless the rename committed it. */
const releaseTemp = (ctx: WriteContext, target: Target) => (temp: TempFile): Effect.Effect<void> =>
  temp.committed
    ? closeTemp(temp)
    : Effect.zipRight(
      closeTemp(temp),
      ctx.fs.remove(temp.path).pipe(
        Effect.catchAll((error) =>
          errorCode(error) === "ENOENT"
            ? Effect.void
            : Effect.logWarning(
              new CleanupFailure({
                operation: ctx.operation,
                path: target.path,
                tempPath: temp.path,
                reason: reasonOf(error),
                cause: error
              })
            )
        )
      )
    )

/**
 * What the target's `lstat` says of the guess that it is a regular file or
 * nothing: the file replaced (`None`: nothing), or `undefined` when the
 * guess was wrong (a link, a directory, ...) or the call failed.
 */
export const checkGuess = (
  error: PlatformError | undefined,
  info: FileSystem.File.Info | undefined
): Option.Option<FileSystem.File.Info> | undefined =>
  error === undefined
    ? info !== undefined && info.type === "File" ? Option.some(info) : undefined
    : errorCode(error) === "ENOENT"
    ? Option.none()
    : undefined

/** The permission bits a create with `createMode` gave, the umask applied. */
export const createdModeOf = (createMode: number, modes: { readonly mask: number }): number => createMode & ~modes.mask

/**
 * With handles that have `lstat` (`Handles.startLinkStat`): the target's
 * `lstat` and the temporary file's create at once, on the guess that the
 * path is a regular file or nothing (so the temporary file belongs in its
 * directory), the temporary file created with `createMode` (the mode this
 * writer gave the file last time, else a new file's). The `lstat` then
 * checks the guess and gives the mode and owner to keep. When the mode is
 * narrower than the guess, the temporary file gets it before any byte is
 * written.
 *
 * `undefined` when the guess was wrong (a link, a directory, anything but a
 * regular file) or a call failed (a missing directory, say): the temporary
 * file, if made, is removed again, and the caller takes the usual way,
 * which follows links and reports what failed. Uninterruptible: the caller
 * owns the file returned.
 */
export const createGuessed = (
  ctx: WriteContext,
  absolute: string,
  startLinkStat: (path: string) => Effect.Effect<Pending<FileSystem.File.Info>>,
  createMode: number,
  requestedMode: number | undefined,
  durable: boolean
): Effect.Effect<
  { readonly target: Target; readonly temp: TempFile; readonly modes: ReturnType<typeof modeOf> } | undefined
> =>
  Effect.uninterruptible(Effect.gen(function*() {
    const guess: Target = {
      path: absolute,
      directory: ctx.path.dirname(absolute),
      base: ctx.path.basename(absolute),
      existing: Option.none()
    }
    const statting = yield* startLinkStat(absolute)
    const created = yield* Effect.exit(createTempFile(ctx, guess, { createParents: false, durable, createMode }))
    const stat = yield* Effect.exit(statting.await)
    if (Exit.isFailure(created)) return undefined
    const temp = created.value
    const existing = Exit.isSuccess(stat)
      ? checkGuess(undefined, stat.value)
      : checkGuess(Cause.squash(stat.cause) as PlatformError, undefined)
    if (existing === undefined) {
      yield* releaseTemp(ctx, guess)(temp)
      return undefined
    }
    const target: Target = { ...guess, existing }
    const modes = modeOf(target, requestedMode, ctx.umask)
    const createdMode = createdModeOf(createMode, modes)
    if ((createdMode & ~modes.createMode) === 0) {
      return { target, temp, modes: { ...modes, createdMode } }
    }
    // bits the new file must not have: off before the content goes in
    const narrowed = yield* Effect.exit(ctx.fs.chmod(temp.path, modes.createMode))
    if (Exit.isFailure(narrowed)) {
      yield* releaseTemp(ctx, guess)(temp)
      return undefined
    }
    return { target, temp, modes: { ...modes, createdMode: modes.createMode } }
  }))

// -- 5, 6 --------------------------------------------------------------------

const tempWriteFailure = (ctx: WriteContext, target: Target, temp: TempFile) => (error: PlatformError) =>
  new TempWriteFailure({
    operation: ctx.operation,
    path: target.path,
    tempPath: temp.path,
    reason: reasonOf(error),
    cause: error
  })

/**
 * Writes all of `data`, looping over short writes itself rather than trusting
 * every FileSystem's `writeAll` to do so. A write that makes no progress
 * fails (EIO) instead of looping for ever.
 */
export const writeFully = (
  write: (data: Uint8Array) => Effect.Effect<number | FileSystem.Size, PlatformError>,
  descriptor: string | number,
  data: Uint8Array
): Effect.Effect<void, PlatformError> =>
  data.length === 0 ? Effect.void : Effect.flatMap(write(data), (written) => {
    const count = Number(written)
    return count <= 0
      ? Effect.fail(
        new SystemError({
          module: "FileSystem",
          method: "write",
          reason: "WriteZero",
          pathOrDescriptor: descriptor,
          description: "write made no progress"
        })
      )
      : count >= data.length
      ? Effect.void
      : writeFully(write, descriptor, data.subarray(count))
  })

/** Writes all of `data` into the temporary file. */
export const writeTemp = (
  ctx: WriteContext,
  target: Target,
  temp: TempFile,
  data: Uint8Array
): Effect.Effect<void, TempWriteFailure> =>
  Effect.mapError(writeFully(temp.handle.write, temp.path, data), tempWriteFailure(ctx, target, temp))

/**
 * Writes the stream chunk by chunk: memory holds one chunk at a time. The
 * stream's own errors pass through unchanged; its resources are released
 * when the write ends, however it ends.
 *
 * The chunks are pulled (`Stream.toPull`) rather than handed to
 * `Stream.runForEach`: through `Sink.forEach` and the channel executor, a
 * producer's fresh buffers outlived V8's young-generation collections (each
 * one freed nothing) and waited for a mark-compact, which V8 starts when
 * 64 MiB of them have piled up; pulled, the next scavenge frees them
 * (docs/NOTES.md, "writeStream memory").
 */
export const writeTempStream = <E, R>(
  ctx: WriteContext,
  target: Target,
  temp: TempFile,
  stream: Stream.Stream<Uint8Array, E, R>
): Effect.Effect<void, TempWriteFailure | E, R> => {
  const onError = tempWriteFailure(ctx, target, temp)
  const writeChunk = (chunk: Uint8Array) => Effect.mapError(writeFully(temp.handle.write, temp.path, chunk), onError)
  return Effect.scoped(Effect.flatMap(Stream.toPull(stream), (pull) => {
    let done = false
    return Effect.whileLoop({
      while: () => !done,
      body: () =>
        Effect.matchEffect(pull, {
          onFailure: Option.match({
            onNone: () => {
              done = true
              return Effect.void
            },
            onSome: (error) => Effect.fail(error)
          }),
          onSuccess: (chunks) => Effect.forEach(chunks, writeChunk, { discard: true })
        }),
      step: () => {}
    })
  }))
}

/** fsync the temporary file: the data is on disk before the name points at it. */
export const syncTemp = (
  ctx: WriteContext,
  target: Target,
  temp: TempFile
): Effect.Effect<void, TempWriteFailure> => Effect.mapError(temp.handle.sync, tempWriteFailure(ctx, target, temp))

/** The temporary file's identity, from `Handle.startIdentity`. */
export const awaitIdentity = (
  ctx: WriteContext,
  target: Target,
  temp: TempFile,
  identity: Pending<FileId | undefined>
): Effect.Effect<FileId | undefined, TempWriteFailure> =>
  Effect.mapError(identity.await, tempWriteFailure(ctx, target, temp))

/**
 * Runs `effect` with the temporary file's close started beside it (with
 * Node handles; otherwise made after it). A failure to close is logged.
 */
export const closeTempBeside = <A, E, R>(temp: TempFile, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    if (temp.closed) return effect
    temp.closed = true
    return Effect.flatMap(temp.handle.startClose, (closing) =>
      effect.pipe(
        Effect.onError(() => closing.settle),
        Effect.tap(() =>
          Effect.catchAllCause(closing.await, (cause) => Effect.logWarning("closing a temporary file failed", cause))
        )
      ))
  })

// -- 7 -----------------------------------------------------------------------

/**
 * The mode (see `modeOf`), with chmod when the temporary file was not
 * created with it (the umask took bits away, or special bits are asked
 * for). The owner: the replaced file's, where the process may set it (EPERM
 * is ignored: only root may give a file away). Calls that would change
 * nothing are skipped; `undefined` when there is nothing to do.
 */
export const applyModeAndOwner = (
  ctx: WriteContext,
  target: Target,
  temp: TempFile,
  modes: { readonly mode: number; readonly createdMode: number }
): Effect.Effect<void, TempWriteFailure> | undefined => {
  const { fs } = ctx
  const plan = modeAndOwnerPlan(target, modes)
  if (plan === undefined) {
    return undefined
  }
  const chmod = plan.chmod === undefined ? Effect.void : fs.chmod(temp.path, plan.chmod)
  const owner = plan.owner
  return Effect.mapError(
    owner === undefined ? chmod : Effect.zipRight(
      fs.chown(temp.path, owner.uid, owner.gid).pipe(
        Effect.catchAll((error) => errorCode(error) === "EPERM" ? Effect.void : Effect.fail(error))
      ),
      chmod
    ),
    tempWriteFailure(ctx, target, temp)
  )
}

/**
 * What `applyModeAndOwner` does: the owner to give the file (then chown,
 * whose EPERM is ignored), and the mode to chmod it to (after the chown,
 * which may clear set-user-ID and set-group-ID bits); `undefined` when
 * nothing is to be done.
 */
export const modeAndOwnerPlan = (
  target: Target,
  modes: { readonly mode: number; readonly createdMode: number }
):
  | { readonly owner: { readonly uid: number; readonly gid: number } | undefined; readonly chmod: number | undefined }
  | undefined =>
{
  let owner: { readonly uid: number; readonly gid: number } | undefined
  if (Option.isSome(target.existing)) {
    const { gid, uid } = target.existing.value
    if (Option.isSome(uid) && Option.isSome(gid)) {
      const ids = effectiveIds()
      if (ids === undefined || uid.value !== ids.uid || gid.value !== ids.gid) {
        owner = { uid: uid.value, gid: gid.value }
      }
    }
  }
  const chmod = modes.mode === modes.createdMode && (owner === undefined || (modes.mode & 0o6000) === 0)
    ? undefined
    : modes.mode
  return owner === undefined && chmod === undefined ? undefined : { owner, chmod }
}

// -- 8 -----------------------------------------------------------------------

/**
 * The rename, uninterruptible so that the `committed` flag always matches
 * what happened on disk: once set, the scope's release leaves the file alone.
 */
export const renameTemp = (
  ctx: WriteContext,
  target: Target,
  temp: TempFile
): Effect.Effect<void, RenameFailure> =>
  Effect.uninterruptible(
    ctx.fs.rename(temp.path, target.path).pipe(
      Effect.tap(() => {
        temp.committed = true
      }),
      Effect.mapError((error) =>
        new RenameFailure({
          operation: ctx.operation,
          path: target.path,
          tempPath: temp.path,
          reason: reasonOf(error),
          cause: error
        })
      )
    )
  )

// -- 9 -----------------------------------------------------------------------

const directorySyncFailure = (ctx: WriteContext, target: Target, directory: string) => (error: PlatformError) =>
  new DirectorySyncFailure({
    operation: ctx.operation,
    path: target.path,
    directory,
    reason: reasonOf(error),
    cause: error
  })

const syncDirectoryRaw = (ctx: WriteContext, directory: string): Effect.Effect<void, PlatformError> =>
  Effect.acquireUseRelease(
    ctx.handles.openDirectory(directory),
    (handle) => handle.sync,
    (handle) => handle.closeInBackground
  )

/** fsync the directory, which makes the rename itself durable. */
export const syncDirectory = (ctx: WriteContext, target: Target): Effect.Effect<void, DirectorySyncFailure> =>
  Effect.mapError(syncDirectoryRaw(ctx, target.directory), directorySyncFailure(ctx, target, target.directory))

/**
 * The target's directory, its open started now (with Node handles, so that
 * it runs beside the writing of the temporary file; otherwise it is made
 * when `syncOpenedDirectory` needs it), for `use`; then closed, whatever
 * happened, once the open (if started) is over.
 */
export const withDirectoryOpening = <A, E, R>(
  ctx: WriteContext,
  target: Target,
  use: (opening: Pending<Handle>) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(
    ctx.handles.startOpenDirectory(target.directory),
    use,
    (opening) =>
      Effect.flatMap(
        opening.settle,
        (handle) => Option.isSome(handle) ? handle.value.closeInBackground : Effect.void
      )
  )

/**
 * fsync the directory `withDirectoryOpening` opened. Its open failing is a
 * failure to sync it: the rename is done by then, as it is when a sync fails.
 */
export const syncOpenedDirectory = (
  ctx: WriteContext,
  target: Target,
  opening: Pending<Handle>
): Effect.Effect<void, DirectorySyncFailure> =>
  Effect.mapError(
    Effect.flatMap(opening.await, (handle) => handle.sync),
    directorySyncFailure(ctx, target, target.directory)
  )
