/**
 * The open files a replace needs (the temporary file, the directory to
 * sync), behind one small interface with two implementations:
 *
 * - `fromFileSystem`: the platform `FileSystem` (`open`, a `File`, a Scope
 *   per file). Any platform, and the memory, fault-injection and crash
 *   simulator layers of the tests.
 * - `nodeHandles` (`nodeHandles.ts`): the same calls made with `node:fs`
 *   on a file descriptor. On Node, the platform's `open` costs a Scope with
 *   a finalizer (whose fiber-ref bookkeeping alone costs more than the
 *   system call) and each `File` call a semaphore; a replace makes five of
 *   them.
 *
 * A handle is not scoped: whoever creates one closes it (the write path does
 * so with `acquireUseRelease`, which costs no finalizer either).
 *
 * The write path overlaps a few calls with an fsync (`Pending`). The Node
 * handles start such a call at once, with a callback, and no fiber; those
 * over `FileSystem` make it when it is awaited, one call after the other,
 * since a fiber to run it beside costs more than the overlap saves.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { errorCode } from "./errno.js"

/** The identity of a file: its device and inode numbers. */
export interface FileId {
  readonly dev: number
  readonly ino: number
}

/**
 * A call started before its result is needed. `await` gives its result;
 * `settle` waits for the call to end (when it was started) and gives what it
 * produced, if it succeeded: the release of a resource it opened uses it.
 * Either may be run more than once, from one fiber at a time.
 */
export interface Pending<A> {
  readonly await: Effect.Effect<A, PlatformError>
  readonly settle: Effect.Effect<Option.Option<A>>
}

/**
 * A call that is not started ahead but made when awaited: what `Handles`
 * without a way to start a call without a fiber give (a fiber costs more
 * than the overlap saves).
 */
export const lazy = <A>(effect: Effect.Effect<A, PlatformError>): Effect.Effect<Pending<A>> =>
  Effect.sync(() => {
    let result: Option.Option<A> = Option.none()
    return {
      await: Effect.tap(effect, (value) => {
        result = Option.some(value)
      }),
      settle: Effect.sync(() => result)
    }
  })

/** A node-style callback; the error is the platform's. */
export type Callback<A> = (error: PlatformError | undefined, value: A) => void

/**
 * The calls of a replace, each reporting to a callback. A callback may be
 * called before the call returns (a synchronous `FileSystem`).
 */
export interface DirectCalls {
  readonly lstat: (path: string, callback: Callback<FileSystem.File.Info>) => void
  /** exclusive create (`wx`) with `mode` (the umask applies); a descriptor */
  readonly create: (path: string, mode: number, callback: Callback<number>) => void
  /** writes `data` from `offset` at `position`, the count written (writes are sequential) */
  readonly write: (fd: number, data: Uint8Array, offset: number, position: number, callback: Callback<number>) => void
  readonly fsync: (fd: number, callback: Callback<void>) => void
  readonly close: (fd: number, callback: Callback<void>) => void
  /** opens a directory for reading, to fsync it */
  readonly openDirectory: (path: string, callback: Callback<number>) => void
  readonly rename: (from: string, to: string, callback: Callback<void>) => void
  readonly remove: (path: string, callback: Callback<void>) => void
  readonly chmod: (path: string, mode: number, callback: Callback<void>) => void
  readonly chown: (path: string, uid: number, gid: number, callback: Callback<void>) => void
}

/** An open file: calls made on its descriptor. */
export interface Handle {
  /** Writes at the handle's position, which advances; the count written. */
  readonly write: (data: Uint8Array) => Effect.Effect<number, PlatformError>
  readonly sync: Effect.Effect<void, PlatformError>
  /** Closes the handle; later calls on it are defects of the caller. */
  readonly close: Effect.Effect<void, PlatformError>
  /**
   * Closes the handle without waiting for the close where that is possible
   * (Node: the call is started; a failure is ignored). For a directory
   * opened to be synced, whose close has nothing left to report.
   */
  readonly closeInBackground: Effect.Effect<void>
  /**
   * Device and inode (`fstat`), started now; `undefined` when the file
   * system has no inode numbers.
   */
  readonly startIdentity: Effect.Effect<Pending<FileId | undefined>>
  /** `close`, started now. */
  readonly startClose: Effect.Effect<Pending<void>>
}

export interface Handles {
  /**
   * `lstat` (which does not follow a link), started now; where the handles
   * have it (Node: the platform `FileSystem` has no lstat). The write path
   * then guesses its target (`createGuessed`) rather than resolving it
   * first.
   */
  readonly startLinkStat: ((path: string) => Effect.Effect<Pending<FileSystem.File.Info>>) | undefined
  /** Creates a new file exclusively (`wx`) with `mode` (the umask applies), for writing. */
  readonly create: (path: string, mode: number) => Effect.Effect<Handle, PlatformError>
  /** Opens a directory for reading, to fsync it. */
  readonly openDirectory: (path: string) => Effect.Effect<Handle, PlatformError>
  /** `openDirectory`, started now. */
  readonly startOpenDirectory: (path: string) => Effect.Effect<Pending<Handle>>
  /**
   * The calls for `directReplace` (a replace of bytes in memory as one chain
   * of callbacks), where the handles have them; otherwise such a replace
   * takes the Effect path too.
   */
  readonly direct: DirectCalls | undefined
}

/**
 * An optional service: when present, AtomicFile's replace opens its files
 * with it rather than with `FileSystem.open`. `AtomicFile.layerNode`
 * provides the `node:fs` one.
 */
export class HandlesService extends Context.Tag("@intent/atomic-file/internal/Handles")<HandlesService, Handles>() {}

export const idOf = (info: FileSystem.File.Info): FileId | undefined =>
  Option.isSome(info.ino) ? { dev: info.dev, ino: info.ino.value } : undefined

/** Handles over `FileSystem.open`: each file in a Scope of its own, closed by `close`. */
export const fromFileSystem = (fs: FileSystem.FileSystem): Handles => {
  const open = (path: string, options: FileSystem.OpenFileOptions): Effect.Effect<Handle, PlatformError> =>
    Effect.uninterruptible(Effect.flatMap(Scope.make(), (scope) =>
      fs.open(path, options).pipe(
        Scope.extend(scope),
        Effect.onError(() => Scope.close(scope, Exit.void)),
        Effect.map((file): Handle => {
          const identity = Effect.map(file.stat, idOf)
          const close = Scope.close(scope, Exit.void)
          return {
            write: (data) => Effect.map(file.write(data), Number),
            sync: file.sync,
            close,
            closeInBackground: Effect.ignore(close),
            startIdentity: lazy(identity),
            startClose: lazy(close)
          }
        })
      )))
  const openDirectory = (path: string) => open(path, { flag: "r" })
  return {
    startLinkStat: undefined,
    direct: undefined,
    create: (path, mode) => open(path, { flag: "wx", mode }),
    openDirectory,
    startOpenDirectory: (path) => lazy(openDirectory(path))
  }
}

const linkInfo: FileSystem.File.Info = {
  type: "SymbolicLink",
  mtime: Option.none(),
  atime: Option.none(),
  birthtime: Option.none(),
  dev: 0,
  rdev: Option.none(),
  ino: Option.none(),
  mode: 0o120777,
  nlink: Option.none(),
  uid: Option.none(),
  gid: Option.none(),
  size: FileSystem.Size(0),
  blksize: Option.none(),
  blocks: Option.none()
}

/**
 * An `lstat` made of `readLink` (a link: its info says so) and `stat`
 * (EINVAL from `readLink`: not a link), for a FileSystem that has none.
 */
const emulatedLinkStat =
  (fs: FileSystem.FileSystem) => (path: string): Effect.Effect<FileSystem.File.Info, PlatformError> =>
    Effect.matchEffect(fs.readLink(path), {
      onSuccess: () => Effect.succeed(linkInfo),
      onFailure: (error) => errorCode(error) === "EINVAL" ? fs.stat(path) : Effect.fail(error)
    })

/**
 * `handles` with the emulated `lstat` (made when awaited) and direct calls
 * over `fs`: for the simulators of the tests, to run the write path of
 * `AtomicFile.layerNode` over a FileSystem that has no `lstat`.
 */
export const withEmulatedLinkStat = (handles: Handles, fs: FileSystem.FileSystem): Handles => {
  const linkStat = emulatedLinkStat(fs)
  return {
    ...handles,
    direct: directCallsOver(fs),
    startLinkStat: (path) => lazy(linkStat(path))
  }
}

/**
 * `DirectCalls` over a platform `FileSystem`: each call runs its effect
 * with `Effect.runCallback`. For the tests' file systems (memory, fault
 * injection, crash simulator), so that they check this path too.
 * Descriptors are numbers handed out here, each a `File` in a Scope of its
 * own; writes are sequential, so the position is the file's own.
 */
export const directCallsOver = (fs: FileSystem.FileSystem): DirectCalls => {
  let nextFd = 1
  const files = new Map<number, { readonly file: FileSystem.File; readonly close: Effect.Effect<void> }>()

  const run = <A>(effect: Effect.Effect<A, PlatformError>, callback: Callback<A>) => {
    Effect.runCallback(effect, {
      onExit: (exit) => {
        if (Exit.isSuccess(exit)) return callback(undefined, exit.value)
        const failure = Cause.failureOption(exit.cause)
        if (Option.isSome(failure)) return callback(failure.value, undefined as never)
        // a defect of the file system stays one
        throw Cause.squash(exit.cause)
      }
    })
  }

  const open = (path: string, options: FileSystem.OpenFileOptions, callback: Callback<number>) =>
    run(
      Effect.uninterruptible(
        Effect.flatMap(Scope.make(), (scope) =>
          fs.open(path, options).pipe(
            Scope.extend(scope),
            Effect.onError(() => Scope.close(scope, Exit.void)),
            Effect.map((file) => {
              const fd = nextFd++
              files.set(fd, { file, close: Scope.close(scope, Exit.void) })
              return fd
            })
          ))
      ),
      callback
    )

  const fileOf = (fd: number) => {
    const entry = files.get(fd)
    if (entry === undefined) throw new Error(`directCallsOver: descriptor ${fd} is not open`)
    return entry
  }

  const linkStat = emulatedLinkStat(fs)

  return {
    lstat: (path, callback) => run(linkStat(path), callback),
    create: (path, mode, callback) => open(path, { flag: "wx", mode }, callback),
    write: (fd, data, offset, _position, callback) =>
      run(Effect.map(fileOf(fd).file.write(data.subarray(offset)), Number), callback),
    fsync: (fd, callback) => run(fileOf(fd).file.sync, callback),
    close: (fd, callback) => {
      const entry = fileOf(fd)
      files.delete(fd)
      run(entry.close, callback)
    },
    openDirectory: (path, callback) => open(path, { flag: "r" }, callback),
    rename: (from, to, callback) => run(fs.rename(from, to), callback),
    remove: (path, callback) => run(fs.remove(path), callback),
    chmod: (path, mode, callback) => run(fs.chmod(path, mode), callback),
    chown: (path, uid, gid, callback) => run(fs.chown(path, uid, gid), callback)
  }
}
