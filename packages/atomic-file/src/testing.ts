/**
 * Test layers users may import (`@intent/atomic-file/testing`): run code that
 * uses `AtomicFile`, `FileLock` or a `FileSystem` without touching the disk.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { AtomicFile } from "./AtomicFile.js"
import * as FileLock from "./FileLock.js"
import * as crashCheck from "./internal/crashCheck.js"
import * as crashSimulator from "./internal/crashSimulator.js"
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

/**
 * Which persistence model the crash simulator enumerates: `"posix"` (the
 * pessimistic one POSIX allows) or `"ext4-ordered"` (ext4 with
 * `data=ordered`). The package README describes both.
 *
 * @since 0.1.0
 * @category models
 */
export type CrashModel = crashSimulator.CrashModel

/**
 * A durable file tree, as a power cut left it: absolute paths of regular
 * files (with their bytes), directories and symbolic links.
 *
 * @since 0.1.0
 * @category models
 */
export interface CrashedTree extends crashSimulator.CrashedTree {}

/**
 * The crash simulator's controller: `durableTree` is what would survive a
 * power cut now if none of the pending changes reached the disk (every
 * change since the last `sync` of the file or directory it belongs to is
 * lost).
 *
 * @since 0.1.0
 * @category tags
 */
export class CrashSimulator extends Context.Tag("@intent/atomic-file/CrashSimulator")<
  CrashSimulator,
  { readonly durableTree: Effect.Effect<CrashedTree> }
>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface CrashSimOptions extends MemoryFileSystemOptions {
  /** Default `"posix"`. */
  readonly model?: CrashModel
}

const makeCrashSim = (options: CrashSimOptions | undefined) => {
  const { durableTree, fs } = crashSimulator.makeSimulator(options ?? {})
  return Context.make(FileSystem.FileSystem, fs).pipe(Context.add(CrashSimulator, { durableTree }))
}

/**
 * `CrashSimFileSystem`: the in-memory FileSystem of `makeMemoryFileSystem`
 * (same errors as the Node layer; the live view), which also keeps a journal
 * of every change by inode, from which the durable view after a power cut is
 * derived. Usable as a fast in-memory FileSystem in any unit test; its
 * `CrashSimulator` tells what a power cut would keep. The journal holds a
 * copy of every byte written: meant for tests, not for long runs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCrashSimFileSystem = (
  options?: CrashSimOptions
): Layer.Layer<FileSystem.FileSystem | CrashSimulator> => Layer.effectContext(Effect.sync(() => makeCrashSim(options)))

/**
 * `AtomicFile`, `FileLock` (in memory), `Path` and the crash-simulating
 * `FileSystem` with its `CrashSimulator`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCrashSim = (
  options?: CrashSimOptions
): Layer.Layer<AtomicFile | FileLock.FileLock | FileSystem.FileSystem | Path.Path | CrashSimulator> =>
  Layer.unwrapEffect(Effect.sync(() => {
    const context = makeCrashSim(options)
    return Layer.merge(
      crashCheck.layerOver(Context.get(context, FileSystem.FileSystem)),
      Layer.succeedContext(Context.pick(CrashSimulator)(context))
    )
  }))

/**
 * What `checkCrashConsistency` covered.
 *
 * @since 0.1.0
 * @category models
 */
export interface CrashCheckReport extends crashCheck.CrashCheckReport {}

/**
 * @since 0.1.0
 * @category models
 */
export interface CrashCheckOptions extends crashCheck.CrashCheckOptions {}

/**
 * A crash state that breaks the invariant: the invariant's message, the
 * calls the program had completed when the power was cut (`trace`, the
 * shortest that reaches a violation), the fate of each change that was still
 * pending (persisted, lost, torn), and the durable tree.
 *
 * @since 0.1.0
 * @category errors
 */
export class CrashViolation extends Data.TaggedError("CrashViolation")<{
  /** what the invariant said */
  readonly violation: string
  /** the calls completed before the power cut */
  readonly trace: ReadonlyArray<string>
  /** the fate of each change that was still pending: persisted, lost or torn */
  readonly fates: ReadonlyArray<string>
  /** the durable tree that breaks the invariant */
  readonly tree: CrashedTree
  /** what was covered up to this crash point */
  readonly report: CrashCheckReport
}> {
  override get message(): string {
    return [
      `crash after ${this.trace.length} calls: ${this.violation}`,
      ...this.trace.map((call, i) => `  ${i + 1}. ${call}`),
      "  power cut; pending changes:",
      ...this.fates.map((fate) => `    ${fate}`)
    ].join("\n")
  }
}

/**
 * Runs `program` on the crash simulator (with `AtomicFile`, an in-memory
 * `FileLock` and `Path` over it); `program` calls `acknowledge` for what it
 * may promise has survived (a write that returned). Then, at every
 * FileSystem call boundary, it enumerates every durable state a power cut
 * could leave under the model (every prefix of each file's and directory's
 * pending changes, writes torn at 4 KiB), and runs `invariant` on each with
 * the values acknowledged before that boundary. The invariant fails (or
 * dies) to report a violation; it runs with a memory `FileSystem` holding the
 * crashed tree, so it may read the tree through the code under test.
 *
 * Succeeds with the counts of crash points and states; fails with the first
 * crash point (the shortest trace) with a violation, in its state that
 * persisted the fewest pending changes. Dies when one crash point has more
 * states than `maxStatesPerCrashPoint`.
 *
 * @since 0.1.0
 * @category crash simulation
 */
export const checkCrashConsistency = <Ack, E, R extends crashCheck.CrashEnvironment>(
  program: (acknowledge: (value: Ack) => Effect.Effect<void>) => Effect.Effect<unknown, E, R>,
  invariant: (
    tree: CrashedTree,
    acknowledged: ReadonlyArray<Ack>
  ) => Effect.Effect<unknown, unknown, FileSystem.FileSystem | Path.Path>,
  options?: CrashCheckOptions
): Effect.Effect<CrashCheckReport, CrashViolation | E, Exclude<R, crashCheck.CrashEnvironment>> =>
  Effect.flatMap(crashCheck.check(program, invariant, options), (outcome) =>
    outcome._tag === "Consistent"
      ? Effect.succeed(outcome.report)
      : Effect.fail(
        new CrashViolation({
          violation: outcome.found.message,
          trace: outcome.found.trace,
          fates: outcome.found.fates,
          tree: outcome.found.tree,
          report: outcome.found.report
        })
      ))
