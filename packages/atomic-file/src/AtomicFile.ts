/**
 * `AtomicFile`: replace a whole file so that every reader, and anyone after a
 * crash or a power cut, sees either the old content or the new, never a mix.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type {
  AppendFailure,
  CleanupFailure,
  DirectoryCreationFailure,
  DirectorySyncFailure,
  FileTooLarge,
  InvalidInput,
  LockError,
  ReadFailure,
  RemoveFailure,
  TargetResolutionFailure,
  WriteError
} from "./AtomicFileError.js"
import * as FileLock from "./FileLock.js"
import * as internal from "./internal/atomicFile.js"
import { HandlesService } from "./internal/handles.js"
import { isNodeFileSystem, nodeHandles } from "./internal/nodeHandles.js"

/**
 * How much of the write survives a power cut once the call returns.
 *
 * - `"full"`: fsync the temporary file before the rename and the directory
 *   after it: the new content is durable when the call succeeds.
 * - `"file"`: fsync the file only: never torn, but the rename itself may be
 *   lost in a power cut (the old content comes back).
 * - `"none"`: no fsync: atomic for readers and across process crashes; after
 *   a power cut the file may be old, new, or (on some file systems) empty.
 *
 * @since 0.1.0
 * @category models
 */
export type Durability = "full" | "file" | "none"

/**
 * @since 0.1.0
 * @category models
 */
export interface WriteOptions {
  /** Default `"full"`. */
  readonly durability?: Durability
  /**
   * The new file's permission bits, applied with chmod (not masked by the
   * umask). Default: the replaced file's mode, else 0o666 minus the umask
   * (the process's umask when the layer was built).
   */
  readonly mode?: number
  /**
   * `"follow"` (default): when the path is a symbolic link, replace the file
   * it points to; the link stays. `"replace"`: replace the link itself with a
   * regular file.
   */
  readonly symlinks?: "follow" | "replace"
  /** Create missing parent directories. Default `true`. */
  readonly createParents?: boolean
}

/**
 * Options of `update`: those of a write, plus the lock's timeout and a bound
 * on the size of the current content read into memory.
 *
 * @since 0.1.0
 * @category models
 */
export interface UpdateOptions extends WriteOptions {
  /** How long to wait for the cross-process lock. Default 30 seconds. */
  readonly lockTimeout?: Duration.DurationInput
  /** Fail with `FileTooLarge` rather than read a larger file. Default: no bound. */
  readonly maxBytes?: number
  /**
   * Whose `FileLock` to take: a path whose lock file (`<path>.lock`) guards
   * the update. Default: the target itself. A store of many files can guard
   * them all with one lock this way, and keep lock files out of its
   * directory listing.
   */
  readonly lockPath?: string
}

/**
 * Options of `remove`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RemoveOptions {
  /** `"full"` (default): fsync the directory after the unlink. `"file"`, `"none"`: no fsync. */
  readonly durability?: Durability
}

/**
 * Options of `append`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendOptions {
  /**
   * `"full"` (default): fsync the file, and its directory when the call
   * created it. `"file"`: fsync the file. `"none"`: no fsync.
   */
  readonly durability?: Durability
  /** The mode of a file the call creates (set with chmod). Default 0o666 minus the umask. */
  readonly mode?: number
  /** Default `"follow"`; `"replace"` would append to the link itself, so it is treated as follow. */
  readonly symlinks?: "follow" | "replace"
  /** Create missing parent directories. Default `true`. */
  readonly createParents?: boolean
  /** How long to wait for the cross-process lock. Default 30 seconds. */
  readonly lockTimeout?: Duration.DurationInput
  /** Whose `FileLock` to take, as for `update`. Default: the file itself. */
  readonly lockPath?: string
  /**
   * What to do with a last line that has no newline, found under the lock.
   * By default it is terminated and kept. With `tornTail`, one for which
   * `isTorn` returns true (the fragment of an interrupted append) is moved
   * instead: see `TornTailOptions`.
   */
  readonly tornTail?: TornTailOptions
}

/**
 * Moving a torn last line out of the way before an append. A power cut can
 * tear an append, leaving a fragment without a newline at the end of the
 * file; terminating it would turn it into a corrupt line. When `isTorn`
 * returns true for it, `append`, under the lock, (1) appends the fragment
 * verbatim as one record to `sidecar` (its own turn and lock, this call's
 * durability and lock timeout), (2) cuts the file back to the end of its last
 * complete line and syncs it (unless durability is `"none"`), (3) appends the
 * record. The fragment is never destroyed: a crash after (1) and before (2)
 * is durable leaves it in both files, and the next append moves it again (so
 * the sidecar may hold it twice). Only the fragment is read (backward from
 * the end): a file that ends with a newline costs nothing more.
 *
 * @since 0.1.0
 * @category models
 */
export interface TornTailOptions {
  /** Tells a fragment from a complete last record that only lacks its newline. */
  readonly isTorn: (fragment: Uint8Array) => boolean
  /** Where fragments go (not the file itself). */
  readonly sidecar: string
}

/**
 * What `cleanupStale` did: the temporary files it removed, and those it kept
 * because the process that writes them is still running.
 *
 * @since 0.1.0
 * @category models
 */
export interface CleanupReport {
  readonly directory: string
  readonly removed: ReadonlyArray<string>
  readonly kept: ReadonlyArray<string>
}

/**
 * The service. Needs `FileSystem` and `Path` from `@effect/platform`:
 * provide `NodeContext.layer`, or a test `FileSystem`.
 *
 * @since 0.1.0
 * @category services
 */
export class AtomicFile extends Effect.Service<AtomicFile>()("@intent/atomic-file/AtomicFile", {
  effect: internal.make,
  dependencies: [FileLock.layer]
}) {}

/**
 * `AtomicFile` for Node, the layer to use there: the same service and the
 * same algorithm as `AtomicFile.Default`, but the temporary file and the
 * directory to sync are opened with `node:fs`, on file descriptors, rather
 * than with `FileSystem.open`. The platform's `open` costs a Scope with a
 * finalizer and each of its `File` calls a semaphore, more than the system
 * calls themselves (docs/BENCHMARKS.md). The other calls (stat, rename,
 * chmod, mkdir, remove, the reads) still go through the `FileSystem`
 * provided, which must therefore be Node's own (`NodeContext.layer`): with a
 * test file system, or another platform's, use `AtomicFile.Default`. The
 * layer checks this when it is built, and dies (a defect, with a message
 * saying so) when the `FileSystem` is another.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerNode: Layer.Layer<AtomicFile, never, FileSystem.FileSystem | Path.Path> = Layer.unwrapEffect(
  Effect.map(
    Effect.flatMap(FileSystem.FileSystem, isNodeFileSystem),
    (isNode) =>
      isNode
        ? AtomicFile.Default.pipe(Layer.provide(Layer.succeed(HandlesService, nodeHandles)))
        : Layer.die(
          new Error(
            "AtomicFile.layerNode: the FileSystem provided is not Node's own file system (NodeContext.layer), " +
              "on which it opens files with node:fs; with another FileSystem, use AtomicFile.Default"
          )
        )
  )
)

/**
 * The service's interface.
 *
 * @since 0.1.0
 * @category models
 */
export interface AtomicFileService {
  /**
   * Replaces `path` with `data`, atomically and (by default) durably.
   *
   * Writes to one path are applied in call order, and coalesced: a batch of
   * writes (same operation and options) takes its content only when it
   * starts filling its temporary file, and until then later calls join it;
   * it writes the last call's content, once. Each call returns only once
   * its own content or a newer one is written with its durability; the last
   * call's content wins. Any other operation on the path ends the batch.
   * Interrupting one member of a batch does not stop the others' write
   * (when the caller whose fiber runs it is interrupted, the others write
   * again); interrupting all of them drops it, or interrupts it before the
   * rename.
   */
  readonly writeFile: (path: string, data: Uint8Array, options?: WriteOptions) => Effect.Effect<void, WriteError>
  /** Replaces `path` with the UTF-8 encoding of `data`; coalesced as `writeFile` is. */
  readonly writeFileString: (path: string, data: string, options?: WriteOptions) => Effect.Effect<void, WriteError>
  /**
   * Replaces `path` with the bytes of `stream`, one chunk in memory at a
   * time. A failure of the stream fails the write with the stream's error and
   * leaves the target unchanged.
   */
  readonly writeStream: <E, R>(
    path: string,
    stream: Stream.Stream<Uint8Array, E, R>,
    options?: WriteOptions
  ) => Effect.Effect<void, WriteError | E, R>
  /**
   * Atomic read-modify-write: in the path's turn and under the cross-process
   * `FileLock`, reads the current content (`None` when the file does not
   * exist), runs `f`, and replaces the file with its result by the whole-file
   * algorithm, unless it returns exactly the current bytes, in which case
   * nothing is written. Returns the new content. No update by another fiber
   * or process that also uses `update` or `append` is lost.
   */
  readonly update: <E, R>(
    path: string,
    f: (current: Option.Option<Uint8Array>) => Effect.Effect<Uint8Array, E, R>,
    options?: UpdateOptions
  ) => Effect.Effect<Uint8Array, WriteError | ReadFailure | FileTooLarge | LockError | E, R>
  /**
   * Appends one record and a newline in a single write, in the path's turn
   * and under the cross-process `FileLock`. A last line without a newline is
   * terminated first, never cut, unless `tornTail` moves it to a sidecar file.
   * The record must not contain a newline.
   */
  readonly append: (
    path: string,
    record: Uint8Array | string,
    options?: AppendOptions
  ) => Effect.Effect<
    void,
    InvalidInput | TargetResolutionFailure | DirectoryCreationFailure | DirectorySyncFailure | AppendFailure | LockError
  >
  /**
   * Removes the file (not a directory), in the path's turn, and under
   * `"full"` durability fsyncs its directory so the removal survives a power
   * cut. A missing file fails with `RemoveFailure(NotFound)`.
   */
  readonly remove: (
    path: string,
    options?: RemoveOptions
  ) => Effect.Effect<void, InvalidInput | TargetResolutionFailure | RemoveFailure>
  /** Removes the temporary files that crashed writers left in `directory`. */
  readonly cleanupStale: (directory: string) => Effect.Effect<CleanupReport, InvalidInput | CleanupFailure>
}

// The service built by `make` must implement the documented interface.
const _conforms: (service: AtomicFile) => AtomicFileService = (service) => service
void _conforms
