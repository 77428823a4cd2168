/**
 * Test layers users may import (`@intent/atomic-file/testing`): run code that
 * uses `AtomicFile`, `FileLock` or a `FileSystem` without touching the disk.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { AtomicFile } from "./AtomicFile.js"
import * as FileLock from "./FileLock.js"
import * as faults from "./internal/faultInjection.js"
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

/**
 * What to break: the Nth call (1-based, counted over every FileSystem and
 * File method that can fail, since the plan was armed), or every call of a
 * method, with an errno; or make the Nth call, if it is a `write`, short.
 *
 * @since 0.1.0
 * @category models
 */
export type FaultPlan = faults.FaultPlan

/**
 * Controls the fault-injecting FileSystem: `arm(plan)` (or `arm(undefined)`
 * to pass every call), `calls` (the calls since the last `arm`, as
 * `"method path"`), `fired` (how often the plan struck).
 *
 * @since 0.1.0
 * @category tags
 */
export class FaultInjection extends Context.Tag("@intent/atomic-file/FaultInjection")<
  FaultInjection,
  faults.FaultController
>() {}

/**
 * Replaces the `FileSystem` of the environment (real or in memory) with one
 * that fails the calls a `FaultPlan` picks, with the same `SystemError` (errno
 * in `cause.code`) the Node layer gives, and provides its `FaultInjection`
 * controller. Run an operation once unarmed to count its calls, then fail
 * each in turn.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFaultInjection: Layer.Layer<FileSystem.FileSystem | FaultInjection, never, FileSystem.FileSystem> =
  Layer.effectContext(
    Effect.map(FileSystem.FileSystem, (real) => {
      const { controller, fs } = faults.make(real)
      return Context.make(FileSystem.FileSystem, fs).pipe(Context.add(FaultInjection, controller))
    })
  )
