/**
 * A crash-safe drop-in for `@effect/platform`'s
 * `KeyValueStore.layerFileSystem`: the same files, keys and errors, but every
 * `set` is an atomic, durable replace and `modify` an atomic
 * read-modify-write.
 *
 * @since 0.1.0
 */
import type { PlatformError } from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import type * as Path from "@effect/platform/Path"
import * as Layer from "effect/Layer"
import { AtomicFile, type Durability } from "./AtomicFile.js"
import * as FileLock from "./FileLock.js"
import * as internal from "./internal/keyValueStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Durability of `set`, `remove`, `modify` and `clear`, as `AtomicFile`'s.
   * Default `"full"`: a value is on disk when `set` returns.
   */
  readonly durability?: Durability
}

/**
 * The store in `directory`, one file per key (`encodeURIComponent(key)`),
 * exactly as `KeyValueStore.layerFileSystem` lays it out, so either reads
 * what the other wrote. Differences, all on the safe side:
 *
 * - `set` replaces the file atomically (temp file, fsync, rename, directory
 *   fsync): a reader sees the old value or the new one, never part of one,
 *   and a crash never leaves a torn or empty value;
 * - `modify`, `modifyUint8Array` and `forSchema(...).modify` are atomic
 *   read-modify-writes: no increment is lost between fibers or processes;
 * - `set`, `remove`, `modify` and `clear` take one cross-process lock per
 *   store (the lock file `#store.lock` in the directory);
 * - `remove` syncs the directory; `clear` removes the keys without ever
 *   removing the directory, and a clear that a crash interrupted is finished
 *   when the store is opened again;
 * - temporary and lock files (their names hold a `#`, which
 *   `encodeURIComponent` never writes) are never counted as keys, and stale
 *   temporary files are removed when the store is opened.
 *
 * Needs only the platform (`NodeContext.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem = (
  directory: string,
  options?: Options
): Layer.Layer<KeyValueStore.KeyValueStore, PlatformError, FileSystem.FileSystem | Path.Path> =>
  layerFileSystemWithoutDependencies(directory, options).pipe(
    Layer.provide(Layer.provideMerge(AtomicFile.DefaultWithoutDependencies, FileLock.layer))
  )

/**
 * `layerFileSystem` over the `AtomicFile` and `FileLock` of the environment
 * (for instance the in-memory ones of `@intent/atomic-file/testing`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystemWithoutDependencies = (
  directory: string,
  options?: Options
): Layer.Layer<
  KeyValueStore.KeyValueStore,
  PlatformError,
  AtomicFile | FileLock.FileLock | FileSystem.FileSystem | Path.Path
> => Layer.effect(KeyValueStore.KeyValueStore, internal.make(directory, options))
