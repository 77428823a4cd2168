/**
 * Test layers users may import (`@intent/atomic-file/testing`): run code that
 * uses `AtomicFile`, `FileLock` or a `FileSystem` without touching the disk.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Layer from "effect/Layer"
import { AtomicFile } from "./AtomicFile.js"
import * as FileLock from "./FileLock.js"
import * as internal from "./internal/memoryFileSystem.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryFileSystemOptions {
  /** Owner of new files. Default 0. */
  readonly uid?: number
  /** Group of new files. Default 0. */
  readonly gid?: number
  /** Default 0o022. */
  readonly umask?: number
}

/**
 * A fresh in-memory file system: POSIX paths from "/", directories, symbolic
 * links, modes, owners, open files with positions and append mode, and the
 * errors (`SystemError` with the errno in `cause.code`) the Node layer gives
 * for missing paths, existing paths with `wx`, directories and so on. `sync`
 * does nothing: everything is "durable" at once (the crash simulator is the
 * layer that models what a power cut keeps).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryFileSystem = (options?: MemoryFileSystemOptions): FileSystem.FileSystem => internal.make(options)

/**
 * `FileSystem` in memory, new for each build of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryFileSystem = (options?: MemoryFileSystemOptions): Layer.Layer<FileSystem.FileSystem> =>
  Layer.sync(FileSystem.FileSystem, () => internal.make(options))

/**
 * `AtomicFile`, `FileLock`, `FileSystem` and `Path`, all in memory: the
 * whole stack without a disk.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (
  options?: MemoryFileSystemOptions
): Layer.Layer<AtomicFile | FileLock.FileLock | FileSystem.FileSystem | Path.Path> =>
  Layer.provideMerge(
    AtomicFile.DefaultWithoutDependencies,
    Layer.provideMerge(FileLock.layerMemory, Layer.merge(layerMemoryFileSystem(options), Path.layer))
  )
