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
const loadOsLock = () => (osLock ??= import("os-lock") as Promise<OsLock>)

/** The lock is taken by someone else: try again later. */
const isContended = (code: unknown) => code === "EACCES" || code === "EAGAIN" || code === "EBUSY"

/**
 * Runs `take` in a scope of its own, forked from the caller's, under the
 * timeout: when it fails or times out, whatever it acquired is released at
 * once instead of when the caller's scope closes.
 */
const acquireWithin = (
  take: Effect.Effect<void, LockError, Scope.Scope>,
  onTimeout: () => LockError,
  timeout: Duration.Duration
): Effect.Effect<void, LockError, Scope.Scope> =>
  Effect.flatMap(
    Effect.scope,
    (outer) =>
      Effect.flatMap(Scope.fork(outer, ExecutionStrategy.sequential), (inner) =>
        take.pipe(
          Scope.extend(inner),
          Effect.timeoutFail({ duration: timeout, onTimeout }),
          Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(inner, exit) : Effect.void)
        ))
  )

const makeService = (
  path: Path.Path,
  take: (file: string, lockPath: string) => Effect.Effect<void, LockError, Scope.Scope>
): FileLockService => {
  const acquire = (file: string, options?: LockOptions) =>
    Effect.suspend(() => {
      const lockPath = lockPathFor(path, file)
      const timeout = options?.timeout === undefined ? DEFAULT_TIMEOUT : Duration.decode(options.timeout)
      return acquireWithin(
        take(path.resolve(file), lockPath),
        () => new LockTimeout({ operation: "lock", path: path.resolve(file), lockPath, timeout }),
        timeout
      )
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

  const take = (file: string, lockPath: string): Effect.Effect<void, LockError, Scope.Scope> =>
    Effect.gen(function*() {
      const addon = yield* Effect.tryPromise({
        try: loadOsLock,
        catch: (cause) =>
          failure(
            file,
            lockPath,
            FileErrorReason.Other({ code: "ENOADDON", description: "the os-lock native addon did not load" }),
            cause
          )
      })
      yield* processQueue.acquire(lockPath)
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
        // the wait between polls is real time even under a TestClock: it is an
        // implementation detail, not a delay the caller asked for
        yield* Effect.withClock(Effect.sleep(Duration.millis(delay * (0.5 + Math.random()))), liveClock)
        delay = Math.min(delay * 2, 32)
      }
    })

  return makeService(path, take)
})

export const makeMemory = Effect.gen(function*() {
  const path = yield* Path.Path
  const queue = makeKeyedQueue()
  return makeService(path, (_file, lockPath) => queue.acquire(lockPath))
})
