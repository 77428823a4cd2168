import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { FileErrorReason, type LockError, LockFailure, LockTimeout } from "../AtomicFileError.js"
import type { FileLockService, LockOptions } from "../FileLock.js"
import { errorCode, reasonOf } from "./errno.js"
import { type KeyedQueue, makeKeyedQueue } from "./keyedQueue.js"
import { truncateUtf8 } from "./tempName.js"

const DEFAULT_TIMEOUT = Duration.seconds(30)
const liveClock = Clock.make()
const SUFFIX = ".lock"

export const lockPathFor = (path: Path.Path, file: string): string => {
  const absolute = path.resolve(file)
  return path.join(path.dirname(absolute), truncateUtf8(path.basename(absolute), 255 - SUFFIX.length) + SUFFIX)
}

interface OsLock {
  readonly lock: (fd: number, options: { exclusive: boolean; immediate: boolean }) => Promise<void>
}

// POSIX record locks belong to the process, and closing any descriptor of
// the file releases them: so one FIFO per lock file for the whole process,
// shared by every layer built in it, and only one descriptor open at a time.
const processQueue: KeyedQueue = makeKeyedQueue()

let osLock: Promise<OsLock> | undefined
let loaded: OsLock | undefined
const loadOsLock = () => (osLock ??= import("os-lock") as Promise<OsLock>)

/** The lock is taken by someone else: try again later. */
const isContended = (code: unknown) => code === "EACCES" || code === "EAGAIN" || code === "EBUSY"

/** What a lock implementation does to take the lock of one file. */
type Take = (
  file: string,
  lockPath: string,
  deadline: number,
  timedOut: () => LockTimeout
) => Effect.Effect<void, LockError, Scope.Scope>

/** Bounds a wait by the deadline: only called when there is a wait to make. */
const untilDeadline = (deadline: number, timedOut: () => LockTimeout) => (wait: Effect.Effect<void>) =>
  Effect.suspend(() =>
    Effect.timeoutFail(wait, { duration: Duration.millis(Math.max(0, deadline - Date.now())), onTimeout: timedOut })
  )

/**
 * The timeout is real time (a deadline on `Date.now()`), also under a
 * TestClock: the other holders are real processes. What `take` acquired sits
 * in a scope of its own, forked from the caller's, and is released at once
 * when taking fails.
 */
const makeService = (path: Path.Path, take: Take): FileLockService => {
  const acquire = (file: string, options?: LockOptions) =>
    Effect.suspend(() => {
      const absolute = path.resolve(file)
      const lockPath = lockPathFor(path, file)
      const timeout = options?.timeout === undefined ? DEFAULT_TIMEOUT : Duration.decode(options.timeout)
      const deadline = Date.now() + Duration.toMillis(timeout)
      const timedOut = () => new LockTimeout({ operation: "lock", path: absolute, lockPath, timeout })
      return Effect.flatMap(Effect.scope, (outer) =>
        Effect.flatMap(Scope.fork(outer, ExecutionStrategy.sequential), (inner) =>
          take(absolute, lockPath, deadline, timedOut).pipe(
            Scope.extend(inner),
            Effect.onExit((exit) =>
              Exit.isFailure(exit) ? Scope.close(inner, exit) : Effect.void
            )
          )))
    })
  return {
    acquire,
    withLock: (file, options) => (self) => Effect.scoped(Effect.zipRight(acquire(file, options), self))
  }
}

export const makeKernel = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path

  const failure = (file: string, lockPath: string, reason: FileErrorReason, cause?: unknown) =>
    new LockFailure({ operation: "lock", path: file, lockPath, reason, cause })

  // "a": creates the lock file when missing and never truncates it.
  const openLockFile = (file: string, lockPath: string) =>
    fs.open(lockPath, { flag: "a", mode: 0o666 }).pipe(
      Effect.catchAll((error) =>
        errorCode(error) === "ENOENT"
          ? Effect.zipRight(
            fs.makeDirectory(path.dirname(lockPath), { recursive: true }),
            fs.open(lockPath, { flag: "a", mode: 0o666 })
          )
          : Effect.fail(error)
      ),
      Effect.mapError((error) => failure(file, lockPath, reasonOf(error), error))
    )

  const lockOnce = (addon: OsLock, fd: number) =>
    Effect.tryPromise({
      try: () => addon.lock(fd, { exclusive: true, immediate: true }),
      catch: (error) => error as { readonly code?: unknown; readonly message?: string }
    })

  const loadAddon = (file: string, lockPath: string) =>
    loaded === undefined
      ? Effect.tryPromise({
        try: () => loadOsLock().then((addon) => (loaded = addon)),
        catch: (cause) =>
          failure(
            file,
            lockPath,
            FileErrorReason.Other({ code: "ENOADDON", description: "the os-lock native addon did not load" }),
            cause
          )
      })
      : Effect.succeed(loaded)

  const take: Take = (file, lockPath, deadline, timedOut) =>
    Effect.gen(function*() {
      const addon = yield* loadAddon(file, lockPath)
      yield* processQueue.acquire(lockPath, untilDeadline(deadline, timedOut))
      const handle = yield* openLockFile(file, lockPath)
      const fd = Number(handle.fd)
      // Polls with a non-blocking lock: a blocking F_SETLKW would hold one of
      // libuv's few pool threads and could not be abandoned on timeout.
      let delay = 1
      while (true) {
        const attempt = yield* Effect.either(lockOnce(addon, fd))
        if (attempt._tag === "Right") return
        const code = attempt.left.code
        if (!isContended(code)) {
          return yield* Effect.fail(
            failure(
              file,
              lockPath,
              FileErrorReason.Other({ code: String(code), description: attempt.left.message ?? "lock failed" }),
              attempt.left
            )
          )
        }
        const remaining = deadline - Date.now()
        if (remaining <= 0) return yield* Effect.fail(timedOut())
        // the wait between polls is real time even under a TestClock
        const pause = Math.min(remaining, delay * (0.5 + Math.random()))
        yield* Effect.withClock(Effect.sleep(Duration.millis(pause)), liveClock)
        delay = Math.min(delay * 2, 32)
      }
    })

  return makeService(path, take)
})

export const makeMemory = Effect.gen(function*() {
  const path = yield* Path.Path
  const queue = makeKeyedQueue()
  return makeService(
    path,
    (_file, lockPath, deadline, timedOut) => queue.acquire(lockPath, untilDeadline(deadline, timedOut))
  )
})
