/**
 * `FileLock`: an exclusive lock on a file, shared by every process of the
 * machine, held for a scope.
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { LockError } from "./AtomicFileError.js"
import * as internal from "./internal/fileLock.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface LockOptions {
  /** How long to wait for the lock. Default 30 seconds. */
  readonly timeout?: Duration.DurationInput
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FileLockService {
  /**
   * Waits for the exclusive lock of `path` and holds it until the scope
   * closes (also on failure and interruption). The lock lives in a separate
   * file, `lockPathFor(path)`, created when missing and never removed.
   */
  readonly acquire: (path: string, options?: LockOptions) => Effect.Effect<void, LockError, Scope.Scope>
  /** Runs `self` while holding the lock of `path`. */
  readonly withLock: (
    path: string,
    options?: LockOptions
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | LockError, R>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class FileLock extends Context.Tag("@intent/atomic-file/FileLock")<FileLock, FileLockService>() {}

/**
 * The lock file of `path`: `<name>.lock` beside it (the name cut so that it
 * stays within 255 bytes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const lockPathFor: (path: Path.Path, file: string) => string = internal.lockPathFor

/**
 * Kernel locks (`fcntl` F_SETLK, through the `os-lock` addon) on the lock
 * file, plus a FIFO per lock file inside the process (POSIX record locks
 * belong to the process, so fibers of one process must take turns
 * themselves). The kernel releases the lock when the holder dies, however it
 * dies: there is never a stale lock to reclaim.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<FileLock, never, FileSystem.FileSystem | Path.Path> = Layer.effect(
  FileLock,
  internal.makeKernel
)

/**
 * Mutual exclusion between the fibers of this process only, without touching
 * the file system: for tests, and for programs that are the only process using
 * their files.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<FileLock, never, Path.Path> = Layer.effect(FileLock, internal.makeMemory)
