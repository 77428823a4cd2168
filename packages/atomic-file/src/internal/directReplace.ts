/**
 * The whole-file replace of bytes in memory, for the common case, as one
 * chain of callbacks in a single `Effect.async`: the steps of
 * `writeSteps.ts` (create, write, fsync, mode and owner, rename, directory
 * fsync) in the order the Effect path runs them, with the same overlaps and
 * the same errors, but without an Effect operation per call. On Node, the
 * fiber runtime's work per step cost more than the system calls themselves
 * (docs/NOTES.md, "Performance findings"); this path makes a replace cost
 * about what the raw `node:fs` sequence costs.
 *
 * It only takes the common case: the target is a regular file or nothing,
 * in a directory that exists (the guess of `createGuessed`). Anything else
 * (a link, a directory, a missing parent, a failed `lstat` or create) ends
 * it before any byte is written, with the temporary file removed again, and
 * the caller takes the Effect path (`Fallback`), which handles every case
 * and reports what failed.
 *
 * The calls go through `DirectCalls`: `node:fs` for `AtomicFile.layerNode`
 * (`nodeHandles.ts`), or any platform `FileSystem` (`directCallsOver`), which
 * is how the crash simulator and the fault injection of the tests check
 * this path.
 *
 * Interruption: before the rename, an interrupted replace stops at the next
 * step, closes and removes its temporary file, and only then lets the fiber
 * go (the canceler waits for it); once the rename has started, the replace
 * runs to its end (the directory fsync included), as the rename is the
 * commit point.
 */
import { type PlatformError, SystemError } from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Option from "effect/Option"
import {
  CleanupFailure,
  DirectorySyncFailure,
  type Operation,
  RenameFailure,
  TempWriteFailure,
  type WriteError
} from "../AtomicFileError.js"
import { errorCode, reasonOf } from "./errno.js"
import type { Callback, DirectCalls } from "./handles.js"
import { processId } from "./processInfo.js"
import { makeTempName } from "./tempName.js"
import { checkGuess, createdModeOf, modeAndOwnerPlan, modeOf, type Target } from "./writeSteps.js"

export interface DirectRequest {
  readonly operation: Operation
  readonly path: Path.Path
  /** the target, absolute; not resolved: a link makes the replace fall back */
  readonly absolute: string
  /**
   * The content, taken once, when the writing starts (not if the replace
   * falls back): until then, the coalesced writes may still replace it.
   */
  readonly take: () => Uint8Array
  readonly durability: "full" | "file" | "none"
  readonly requestedMode: number | undefined
  /** the mode to create the temporary file with, before the target's mode is known */
  readonly createMode: number
  /** the file mode creation mask, read when the layer was built */
  readonly umask: number
}

/** The replace did not start (nothing is left of it): take the Effect path. */
export const Fallback: unique symbol = Symbol.for("@intent/atomic-file/internal/directReplace/Fallback")

/** What a replace ends with: done (the temporary file's create mode, to remember), or `Fallback`. */
export type DirectOutcome = number | typeof Fallback

/** Something that went wrong after the fact (a close, a removal): logged, not failed. */
export interface Warning {
  readonly message: string
  readonly cause: unknown
}

/** How a replace ended, and what it has to report besides. */
export interface Ended {
  readonly exit: Exit.Exit<DirectOutcome, WriteError>
  readonly warnings: ReadonlyArray<Warning>
}

export const logWarnings = (warnings: ReadonlyArray<Warning>): Effect.Effect<void> =>
  Effect.forEach(warnings, (warning) => Effect.logWarning(warning.message, warning.cause), { discard: true })

const settled = (ended: Ended): Effect.Effect<DirectOutcome, WriteError> =>
  ended.warnings.length === 0 ? ended.exit : Effect.zipRight(logWarnings(ended.warnings), ended.exit)

/** Runs the replace: its outcome, or its typed failure. */
export const directReplace = (calls: DirectCalls, request: DirectRequest): Effect.Effect<DirectOutcome, WriteError> =>
  Effect.flatMap(
    Effect.async<Ended>((resume) => {
      const run = startReplace(calls, request, (ended) => resume(Effect.succeed(ended)))
      return Effect.flatMap(
        Effect.async<Ended>((resumeCanceler) => run.interrupt((ended) => resumeCanceler(Effect.succeed(ended)))),
        (ended) => logWarnings(ended.warnings)
      )
    }),
    settled
  )

const writeZero = (tempPath: string) =>
  new SystemError({
    module: "FileSystem",
    method: "write",
    reason: "WriteZero",
    pathOrDescriptor: tempPath,
    description: "write made no progress"
  })

/**
 * The state machine of one replace, started now. `done` is called once,
 * when nothing of the replace is in flight any more but a directory's close
 * (which has nothing to report); `interrupt` stops it at its next step
 * before the commit, and calls back when it has ended.
 */
export const startReplace = (
  calls: DirectCalls,
  request: DirectRequest,
  done: (ended: Ended) => void
): { readonly interrupt: (onEnd: (ended: Ended) => void) => void } => {
  const { absolute, durability, operation } = request
  const directory = request.path.dirname(absolute)
  const base = request.path.basename(absolute)
  const tempPath = request.path.join(directory, makeTempName(base, processId()))
  const warnings: Array<Warning> = []

  let ended: Ended | undefined
  let onEnd: ((ended: Ended) => void) | undefined
  let interrupted = false
  let committed = false
  let fd = -1

  // the directory, opened beside the writing under durability "full"
  let directoryState: "none" | "opening" | "open" | "failed" | "abandoned" = "none"
  let directoryFd = -1
  let directoryError: PlatformError | undefined
  let onDirectory: (() => void) | undefined

  /**
   * A callback that turns an exception it throws (a defect of this module)
   * into the replace's end, rather than leaving the fiber waiting.
   */
  const guard = <A>(callback: Callback<A>): Callback<A> => (error, value) => {
    try {
      callback(error, value)
    } catch (defect) {
      if (ended === undefined) end(Exit.die(defect))
    }
  }

  const end = (exit: Exit.Exit<DirectOutcome, WriteError>) => {
    ended = { exit, warnings }
    done(ended)
    if (onEnd !== undefined) onEnd(ended)
  }

  const closeDirectory = () => {
    if (directoryState === "open") {
      directoryState = "abandoned"
      calls.close(directoryFd, () => {})
    } else if (directoryState === "opening") {
      directoryState = "abandoned"
    }
  }

  const tempFailure = (error: PlatformError) =>
    new TempWriteFailure({ operation, path: absolute, tempPath, reason: reasonOf(error), cause: error })

  /** Ends before the commit: the temporary file closed and removed, then `exit`. */
  const discard = (exit: Exit.Exit<DirectOutcome, WriteError>) => {
    closeDirectory()
    const remove = () =>
      calls.remove(
        tempPath,
        guard((error) => {
          if (error !== undefined && errorCode(error) !== "ENOENT") {
            warnings.push({
              message: "removing a temporary file failed",
              cause: new CleanupFailure({ operation, path: absolute, tempPath, reason: reasonOf(error), cause: error })
            })
          }
          end(exit)
        })
      )
    if (fd === -1) return remove()
    const open = fd
    fd = -1
    calls.close(
      open,
      guard((error) => {
        if (error !== undefined) warnings.push({ message: "closing a temporary file failed", cause: error })
        remove()
      })
    )
  }

  const fail = (error: WriteError) => discard(Exit.fail(error))

  /** True when the replace must stop here (interrupted before the commit). */
  const stopped = () => {
    if (!interrupted) return false
    discard(Exit.interrupt(FiberId.none))
    return true
  }

  // -- create, beside the target's lstat ------------------------------------

  let existing: Option.Option<FileSystem.File.Info> | undefined
  let statDone = false
  let created: boolean | undefined
  let createdMode = 0

  const afterCreateAndStat = () => {
    if (!statDone || created === undefined) return
    if (!created) return end(Exit.succeed(Fallback))
    if (existing === undefined) return discard(Exit.succeed(Fallback))
    if (stopped()) return
    const target: Target = { path: absolute, directory, base, existing }
    const modes = modeOf(target, request.requestedMode, request.umask)
    createdMode = createdModeOf(request.createMode, modes)
    if ((createdMode & ~modes.createMode) === 0) {
      return writeAll(target, modes)
    }
    // bits the new file must not have: off before the content goes in
    calls.chmod(
      tempPath,
      modes.createMode,
      guard((error) => {
        if (error !== undefined) return discard(Exit.succeed(Fallback))
        createdMode = modes.createMode
        if (stopped()) return
        writeAll(target, modes)
      })
    )
  }

  // -- write, fsync, mode and owner -----------------------------------------

  const writeAll = (target: Target, modes: ReturnType<typeof modeOf>) => {
    const data = request.take()
    if (durability === "full") {
      directoryState = "opening"
      calls.openDirectory(
        directory,
        guard((error, opened) => {
          if (directoryState === "abandoned") {
            if (error === undefined) calls.close(opened, () => {})
          } else if (error === undefined) {
            directoryState = "open"
            directoryFd = opened
          } else {
            directoryState = "failed"
            directoryError = error
          }
          const then = onDirectory
          onDirectory = undefined
          if (then !== undefined) then()
        })
      )
    }
    let position = 0
    const next = (): void => {
      if (position >= data.length) return afterWrite(target, modes)
      calls.write(
        fd,
        data,
        position,
        position,
        guard((error, written) => {
          if (error !== undefined) return fail(tempFailure(error))
          if (!(written > 0)) return fail(tempFailure(writeZero(tempPath)))
          position += written
          if (stopped()) return
          next()
        })
      )
    }
    next()
  }

  const afterWrite = (target: Target, modes: ReturnType<typeof modeOf>) => {
    if (durability === "none") return modeAndOwner(target, modes)
    calls.fsync(
      fd,
      guard((error) => {
        if (error !== undefined) return fail(tempFailure(error))
        if (stopped()) return
        modeAndOwner(target, modes)
      })
    )
  }

  const modeAndOwner = (target: Target, modes: ReturnType<typeof modeOf>) => {
    const plan = modeAndOwnerPlan(target, { mode: modes.mode, createdMode })
    if (plan === undefined) return rename(modes.createMode)
    const chmod = () => {
      if (plan.chmod === undefined) return rename(modes.createMode)
      calls.chmod(
        tempPath,
        plan.chmod,
        guard((error) => {
          if (error !== undefined) return fail(tempFailure(error))
          if (stopped()) return
          rename(modes.createMode)
        })
      )
    }
    if (plan.owner === undefined) return chmod()
    calls.chown(
      tempPath,
      plan.owner.uid,
      plan.owner.gid,
      guard((error) => {
        if (error !== undefined && errorCode(error) !== "EPERM") return fail(tempFailure(error))
        if (stopped()) return
        chmod()
      })
    )
  }

  // -- rename (beside the close), directory fsync ---------------------------

  const rename = (createMode: number) => {
    // from here on the replace runs to its end
    let left = 2
    let failure: WriteError | undefined
    const one = () => {
      if (--left > 0) return
      if (failure !== undefined) {
        // not committed: the temporary file is closed already, remove it
        closeDirectory()
        return discard(Exit.fail(failure))
      }
      if (durability !== "full") return end(Exit.succeed(createMode))
      syncDirectory(createMode)
    }
    const open = fd
    fd = -1
    calls.rename(
      tempPath,
      absolute,
      guard((error) => {
        if (error === undefined) committed = true
        else {
          failure = new RenameFailure({ operation, path: absolute, tempPath, reason: reasonOf(error), cause: error })
        }
        one()
      })
    )
    calls.close(
      open,
      guard((error) => {
        if (error !== undefined) warnings.push({ message: "closing a temporary file failed", cause: error })
        one()
      })
    )
  }

  const syncDirectory = (createMode: number) => {
    const directoryFailure = (error: PlatformError) =>
      end(Exit.fail(
        new DirectorySyncFailure({ operation, path: absolute, directory, reason: reasonOf(error), cause: error })
      ))
    const sync = () => {
      if (directoryState === "failed") return directoryFailure(directoryError as PlatformError)
      calls.fsync(
        directoryFd,
        guard((error) => {
          closeDirectory()
          if (error !== undefined) return directoryFailure(error)
          end(Exit.succeed(createMode))
        })
      )
    }
    if (directoryState === "opening") onDirectory = sync
    else sync()
  }

  // the first calls, once every step above is defined (a callback may come at once)
  calls.lstat(
    absolute,
    guard((error, info) => {
      statDone = true
      existing = checkGuess(error, info)
      afterCreateAndStat()
    })
  )
  calls.create(
    tempPath,
    request.createMode,
    guard((error, opened) => {
      created = error === undefined
      if (created) fd = opened
      afterCreateAndStat()
    })
  )

  return {
    interrupt: (callback) => {
      if (ended !== undefined) return callback(ended)
      onEnd = callback
      // before the commit, the next step stops; after it, nothing does
      if (!committed) interrupted = true
    }
  }
}
