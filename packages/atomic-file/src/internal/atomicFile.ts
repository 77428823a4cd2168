import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { AtomicFileService, RemoveOptions, UpdateOptions, WriteOptions } from "../AtomicFile.js"
import {
  FileTooLarge,
  InvalidInput,
  type Operation,
  ReadFailure,
  RemoveFailure,
  type WriteError
} from "../AtomicFileError.js"
import { FileLock } from "../FileLock.js"
import { appendRecord, validateRecord } from "./appendRecord.js"
import { cleanupStale } from "./cleanupStale.js"
import { makeCoalescedWrites, type Start } from "./coalescedWrites.js"
import {
  type DirectOutcome,
  directReplace,
  type DirectRequest,
  Fallback,
  logWarnings,
  startReplace
} from "./directReplace.js"
import { errorCode, reasonOf } from "./errno.js"
import { type DirectCalls, type FileId, fromFileSystem, type Handle, HandlesService, type Pending } from "./handles.js"
import { makeKeyedQueue } from "./keyedQueue.js"
import * as Steps from "./writeSteps.js"

const encoder = new TextEncoder()

/** Fills the temporary file. */
type Fill<E, R> = (
  ctx: Steps.WriteContext,
  target: Steps.Target,
  temp: Steps.TempFile
) => Effect.Effect<void, E, R>

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false
  }
  return true
}

export const make = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const lock = yield* FileLock
  const handles = Option.getOrElse(yield* Effect.serviceOption(HandlesService), () => fromFileSystem(fs))
  const queue = makeKeyedQueue()
  const coalesced = makeCoalescedWrites(queue)
  const known = Steps.makeKnownFiles()
  const createModes = Steps.makeCreateModes()
  // once, never per write (processInfo.umaskOf says why)
  const umask = yield* Steps.readUmask(fs)
  const contextFor = (operation: Operation): Steps.WriteContext => ({ fs, path, operation, handles, umask })
  const noIdentity = Effect.succeed<Pending<FileId | undefined>>({
    await: Effect.succeed(undefined),
    settle: Effect.succeedNone
  })

  /**
   * Validates the path, then runs `body` in the path's turn: calls are
   * ordered per path twice, first by the path as given (taken before any
   * asynchronous step, so in call order), then by the resolved target (so
   * that a link and its destination, written at once, do not race).
   */
  const inTurn = <A, E, R>(
    ctx: Steps.WriteContext,
    input: string,
    symlinks: "follow" | "replace",
    body: (target: Steps.Target) => Effect.Effect<A, E, R>
  ) =>
    Effect.flatMap(Steps.validatePath(ctx.operation, input), () => {
      const absolute = path.resolve(input)
      coalesced.barrier(absolute)
      return queue.run(absolute)(
        Effect.flatMap(Steps.resolveTarget(ctx, absolute, symlinks), (target) =>
          target.path === absolute ? body(target) : queue.run(target.path)(body(target)))
      )
    })

  /**
   * The whole-file algorithm once the temporary file exists. With Node
   * handles, the calls that do not depend on each other overlap: the
   * directory opens while the temporary file is written and synced; the
   * temporary file is closed beside the rename (a file's name can change
   * while it is open), or with durability "full" beside the directory's
   * fsync. Otherwise they run one after the other, and the temporary file's
   * identity is read before the rename (for `resolveKnownTarget`; the Node
   * handles have `lstat` instead).
   */
  const afterCreate = <E, R>(
    ctx: Steps.WriteContext,
    target: Steps.Target,
    temp: Steps.TempFile,
    modes: ReturnType<typeof Steps.modeOf>,
    durability: "full" | "file" | "none",
    fill: Fill<E, R>
  ): Effect.Effect<void, WriteError | E, R> => {
    // the identity is only needed where the next write cannot lstat
    const startIdentity = ctx.handles.startLinkStat === undefined ? temp.handle.startIdentity : noIdentity
    const steps = (opening: Pending<Handle> | undefined) =>
      Effect.flatMap(startIdentity, (identity) =>
        Effect.gen(function*() {
          yield* fill(ctx, target, temp)
          if (durability !== "none") {
            yield* Steps.syncTemp(ctx, target, temp)
          }
          const id = yield* Steps.awaitIdentity(ctx, target, temp, identity)
          const modeAndOwner = Steps.applyModeAndOwner(ctx, target, temp, modes)
          if (modeAndOwner !== undefined) {
            yield* modeAndOwner
          }
          const rename = Effect.tap(Steps.renameTemp(ctx, target, temp), () => {
            if (id !== undefined) known.set(target.path, id)
            createModes.set(target.path, modes.createMode)
          })
          if (opening === undefined) {
            yield* Steps.closeTempBeside(temp, rename)
          } else {
            yield* rename
            yield* Steps.closeTempBeside(temp, Steps.syncOpenedDirectory(ctx, target, opening))
          }
        }).pipe(Effect.onError(() => identity.settle)))
    return durability === "full" ? Steps.withDirectoryOpening(ctx, target, steps) : steps(undefined)
  }

  /** The whole-file algorithm for a resolved target. */
  const replaceSteps = <E, R>(
    ctx: Steps.WriteContext,
    target: Steps.Target,
    options: WriteOptions | undefined,
    fill: Fill<E, R>
  ): Effect.Effect<void, WriteError | E, R> => {
    const durability = options?.durability ?? "full"
    const modes = Steps.modeOf(target, options?.mode, ctx.umask)
    return Steps.withTempFile(
      ctx,
      target,
      { createParents: options?.createParents ?? true, durable: durability === "full", createMode: modes.createMode },
      (temp) => afterCreate(ctx, target, temp, modes, durability, fill)
    )
  }

  /** The replace of a target resolved first (links followed). */
  const replaceUsual = <E, R>(
    ctx: Steps.WriteContext,
    absolute: string,
    options: WriteOptions | undefined,
    fill: Fill<E, R>
  ): Effect.Effect<void, WriteError | E, R> =>
    Effect.flatMap(
      Steps.resolveKnownTarget(ctx, absolute, options?.symlinks ?? "follow", known),
      (target) =>
        target.path === absolute
          ? replaceSteps(ctx, target, options, fill)
          : queue.run(target.path)(replaceSteps(ctx, target, options, fill))
    )

  /** The mode a guessed replace creates its temporary file with. */
  const createModeFor = (absolute: string, options: WriteOptions | undefined) =>
    options?.mode !== undefined ? options.mode & 0o777 : createModes.get(absolute) ?? 0o666

  /**
   * A replace, for a caller that holds the path's turn: a link to follow is
   * resolved first, and its destination's turn taken too, so that a link and
   * its destination, written at once, do not race. Where the handles have
   * `lstat`, the target is guessed to be a regular file or nothing, and
   * checked (`createGuessed`); only a wrong guess takes the usual way.
   */
  const replaceResolved = <E, R>(
    ctx: Steps.WriteContext,
    absolute: string,
    options: WriteOptions | undefined,
    fill: Fill<E, R>
  ): Effect.Effect<void, WriteError | E, R> => {
    const usual = replaceUsual(ctx, absolute, options, fill)
    const startLinkStat = ctx.handles.startLinkStat
    if (startLinkStat === undefined) return usual
    const durability = options?.durability ?? "full"
    const createMode = createModeFor(absolute, options)
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(
        Steps.createGuessed(ctx, absolute, startLinkStat, createMode, options?.mode, durability === "full"),
        (guessed) =>
          guessed === undefined
            ? restore(usual)
            : Steps.useTempFile(
              ctx,
              guessed.target,
              guessed.temp,
              (temp) => restore(afterCreate(ctx, guessed.target, temp, guessed.modes, durability, fill))
            )
      )
    )
  }

  /** A replace filled by a stream: in the path's turn, never coalesced. */
  const replace = <E, R>(
    operation: Operation,
    input: string,
    options: WriteOptions | undefined,
    fill: Fill<E, R>
  ): Effect.Effect<void, WriteError | E, R> =>
    Effect.flatMap(Steps.validatePath(operation, input), () => {
      const absolute = path.resolve(input)
      coalesced.barrier(absolute)
      return queue.run(absolute)(replaceResolved(contextFor(operation), absolute, options, fill))
    })

  /** What the replace of bytes in memory fills its temporary file with: the content, taken when the writing starts. */
  const fillWith = (take: () => Uint8Array): Fill<WriteError, never> => (ctx, target, temp) =>
    Effect.suspend(() => Steps.writeTemp(ctx, target, temp, take()))

  const directRequest = (
    ctx: Steps.WriteContext,
    absolute: string,
    options: WriteOptions | undefined,
    take: () => Uint8Array
  ): DirectRequest => ({
    operation: ctx.operation,
    path,
    absolute,
    take,
    durability: options?.durability ?? "full",
    requestedMode: options?.mode,
    createMode: createModeFor(absolute, options),
    umask: ctx.umask
  })

  /**
   * What follows a direct replace: the Effect path where it did not take
   * the case (`Fallback`); otherwise nothing, its create mode remembered.
   */
  const afterDirect = (
    ctx: Steps.WriteContext,
    absolute: string,
    options: WriteOptions | undefined,
    take: () => Uint8Array,
    outcome: DirectOutcome
  ): Effect.Effect<void, WriteError> | undefined => {
    if (outcome === Fallback) return replaceUsual(ctx, absolute, options, fillWith(take))
    createModes.set(absolute, outcome)
    return undefined
  }

  /**
   * A replace of bytes in memory, for a caller that holds the path's turn:
   * with handles that have direct calls (`layerNode`), the common case runs
   * as one chain of callbacks (`directReplace`); what it does not take (a
   * link, a directory, a missing parent, a failed guess) takes the Effect
   * path.
   */
  const replaceBytes = (
    ctx: Steps.WriteContext,
    absolute: string,
    options: WriteOptions | undefined,
    take: () => Uint8Array
  ): Effect.Effect<void, WriteError> => {
    // the content is taken when the writing starts: until then, later calls may join (coalescedWrites)
    const direct = ctx.handles.direct
    if (direct === undefined) return replaceResolved(ctx, absolute, options, fillWith(take))
    return Effect.flatMap(
      directReplace(direct, directRequest(ctx, absolute, options, take)),
      (outcome) => afterDirect(ctx, absolute, options, take, outcome) ?? Effect.void
    )
  }

  /**
   * `replaceBytes` with callbacks, for a write that found its path idle
   * (`coalescedWrites`): the same replace, without the Effect operations
   * around it.
   */
  const startBytes = (
    direct: DirectCalls,
    ctx: Steps.WriteContext,
    absolute: string,
    options: WriteOptions | undefined
  ): Start<WriteError> =>
  (take, onEnd) => {
    const running = startReplace(direct, directRequest(ctx, absolute, options, take), ({ exit, warnings }) => {
      const after = warnings.length === 0 ? undefined : logWarnings(warnings)
      if (Exit.isFailure(exit)) return onEnd({ _tag: "Done", exit: Exit.asVoid(exit), after })
      const usual = afterDirect(ctx, absolute, options, take, exit.value)
      if (usual !== undefined) {
        return onEnd({ _tag: "More", effect: after === undefined ? usual : Effect.zipRight(after, usual) })
      }
      onEnd({ _tag: "Done", exit: Exit.void, after })
    })
    return { interrupt: (onStopped) => running.interrupt(({ warnings }) => onStopped(logWarnings(warnings))) }
  }

  /** A replace with bytes in memory: coalesced with the writes queued for the same path. */
  const replaceWith = (
    operation: Operation,
    input: string,
    data: Uint8Array,
    options: WriteOptions | undefined
  ): Effect.Effect<void, WriteError> =>
    // one step: the path is resolved (against the working directory) when the effect runs
    Effect.suspend(() => {
      const problem = Steps.pathProblem(operation, input)
      if (problem !== undefined) return Effect.fail(problem)
      const ctx = contextFor(operation)
      const key = `${operation} ${options?.durability ?? "full"} ${options?.mode ?? "-"} ${
        options?.symlinks ?? "follow"
      } ${options?.createParents ?? true}`
      const absolute = path.resolve(input)
      const direct = ctx.handles.direct
      return coalesced.write(
        absolute,
        key,
        data,
        (take) => replaceBytes(ctx, absolute, options, take),
        direct === undefined ? undefined : startBytes(direct, ctx, absolute, options)
      )
    })

  /** The current content of the target, `None` when it does not exist. */
  const readCurrent = (ctx: Steps.WriteContext, target: Steps.Target, maxBytes: number | undefined) =>
    Option.match(target.existing, {
      onNone: () => Effect.succeed(Option.none<Uint8Array>()),
      onSome: (info) =>
        maxBytes !== undefined && Number(info.size) > maxBytes
          ? Effect.fail(
            new FileTooLarge({ operation: ctx.operation, path: target.path, size: Number(info.size), maxBytes })
          )
          : fs.readFile(target.path).pipe(
            Effect.map(Option.some),
            Effect.catchAll((error) =>
              errorCode(error) === "ENOENT"
                ? Effect.succeed(Option.none<Uint8Array>())
                : Effect.fail(
                  new ReadFailure({
                    operation: ctx.operation,
                    path: target.path,
                    reason: reasonOf(error),
                    cause: error
                  })
                )
            )
          )
    })

  /**
   * Under the path's turn and the cross-process lock, the target is resolved
   * again (another process may have replaced it while this one waited), so
   * that the content read and the mode kept are those of the current file.
   */
  const underLock = <A, E, R>(
    ctx: Steps.WriteContext,
    input: string,
    options: {
      readonly symlinks?: "follow" | "replace"
      readonly lockTimeout?: UpdateOptions["lockTimeout"]
      readonly lockPath?: string
    },
    body: (target: Steps.Target) => Effect.Effect<A, E, R>
  ) => {
    const symlinks = options.symlinks ?? "follow"
    return inTurn(ctx, input, symlinks, (target) =>
      lock.withLock(
        options.lockPath ?? target.path,
        options.lockTimeout === undefined ? undefined : { timeout: options.lockTimeout }
      )(Effect.flatMap(Steps.resolveTarget(ctx, target.path, symlinks), body)))
  }

  const update = <E, R>(
    file: string,
    f: (current: Option.Option<Uint8Array>) => Effect.Effect<Uint8Array, E, R>,
    options?: UpdateOptions
  ) => {
    const ctx = contextFor("update")
    return underLock(ctx, file, options ?? {}, (target) =>
      Effect.gen(function*() {
        const current = yield* readCurrent(ctx, target, options?.maxBytes)
        const next = yield* f(current)
        // the same bytes again: nothing to write, the file stays as it is
        if (Option.isSome(current) && sameBytes(current.value, next)) return next
        yield* replaceSteps(ctx, target, options, (ctx, target, temp) => Steps.writeTemp(ctx, target, temp, next))
        return next
      }))
  }

  // typed by the interface: it calls itself for the sidecar of `tornTail`
  const append: AtomicFileService["append"] = (file, record, options) => {
    const ctx = contextFor("append")
    const bytes = typeof record === "string" ? encoder.encode(record) : record
    const durability = options?.durability ?? "full"
    const tornTail = options?.tornTail
    return Effect.zipRight(
      validateRecord(ctx, file, bytes),
      tornTail !== undefined && path.resolve(tornTail.sidecar) === path.resolve(file)
        ? Effect.fail(
          new InvalidInput({ operation: "append", path: file, message: "the sidecar of tornTail is the file itself" })
        )
        : underLock(ctx, file, options ?? {}, (target) =>
          appendRecord(ctx, target, bytes, {
            durability,
            mode: options?.mode,
            createParents: options?.createParents ?? true,
            tornTail: tornTail && {
              isTorn: tornTail.isTorn,
              rescue: (fragment) =>
                append(tornTail.sidecar, fragment, {
                  durability,
                  ...(options?.lockTimeout === undefined ? {} : { lockTimeout: options.lockTimeout })
                })
            }
          }))
    )
  }

  const remove = (file: string, options?: RemoveOptions) => {
    const ctx = contextFor("remove")
    return inTurn(ctx, file, "replace", (target) => {
      const fail = (error: PlatformError, removed: boolean) =>
        new RemoveFailure({ operation: "remove", path: target.path, reason: reasonOf(error), removed, cause: error })
      return fs.remove(target.path).pipe(
        Effect.mapError((error) => fail(error, false)),
        Effect.zipRight(
          (options?.durability ?? "full") === "full"
            ? Effect.mapError(Steps.syncDirectory(ctx, target), (error) =>
              new RemoveFailure({
                operation: "remove",
                path: target.path,
                reason: error.reason,
                removed: true,
                cause: error
              }))
            : Effect.void
        )
      )
    })
  }

  const writeFile = (file: string, data: Uint8Array, options?: WriteOptions) =>
    replaceWith("writeFile", file, data, options)

  const writeFileString = (file: string, data: string, options?: WriteOptions) =>
    replaceWith("writeFileString", file, encoder.encode(data), options)

  const writeStream = <E, R>(file: string, stream: Stream.Stream<Uint8Array, E, R>, options?: WriteOptions) =>
    replace("writeStream", file, options, (ctx, target, temp) => Steps.writeTempStream(ctx, target, temp, stream))

  return {
    writeFile,
    writeFileString,
    writeStream,
    update,
    append,
    remove,
    cleanupStale: (directory: string) => cleanupStale(fs, path, directory)
  } as const
})
