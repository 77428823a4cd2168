/**
 * `Handles` made with `node:fs` on file descriptors: the calls the
 * platform's Node `FileSystem` makes for `open`, `File.write`, `File.sync`,
 * `File.stat` and the close, without its Scope and semaphore, and with the
 * same errors (a `SystemError` whose `cause` is Node's error, errno in
 * `cause.code`).
 *
 * Every call is uninterruptible: an interrupted `open` would leave its
 * descriptor to no one, and a descriptor closed while a `write` on it is
 * still in the thread pool could be reused by another file before the
 * write runs. Each call is short; the fiber is interrupted once it returns.
 */
import { type PlatformError, SystemError, type SystemErrorReason } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as NFS from "node:fs"
import * as OS from "node:os"
import type { Callback as DirectCallback, DirectCalls, FileId, Handle, Handles, Pending } from "./handles.js"
import * as Outcome from "./outcome.js"

const reasonOf = (code: string | undefined): SystemErrorReason => {
  switch (code) {
    case "ENOENT":
      return "NotFound"
    case "EACCES":
      return "PermissionDenied"
    case "EEXIST":
      return "AlreadyExists"
    case "EISDIR":
    case "ENOTDIR":
    case "ELOOP":
      return "BadResource"
    case "EBUSY":
      return "Busy"
    default:
      return "Unknown"
  }
}

/**
 * The platform's error for a failed call, as its Node layer builds it. The
 * fields are the Node error's, so the schema validation (which costs more
 * than the call) is skipped.
 */
const systemError = (method: string, pathOrDescriptor: string | number, error: NodeJS.ErrnoException) =>
  new SystemError({
    reason: reasonOf(error.code),
    module: "FileSystem",
    method,
    pathOrDescriptor,
    ...(error.syscall === undefined ? {} : { syscall: error.syscall }),
    description: error.message,
    cause: error
  }, true)

type Callback<A> = (error: NodeJS.ErrnoException | null, value: A) => void

/**
 * Runs a node:fs call and hands its outcome to `done` as an `Exit`, with the
 * platform's error; a bad argument that node:fs throws synchronously too.
 */
const runCall = <A>(
  method: string,
  pathOrDescriptor: string | number,
  run: (callback: Callback<A>) => void,
  done: (exit: Exit.Exit<A, PlatformError>) => void
): void => {
  try {
    run((error, value) => {
      done(error === null ? Exit.succeed(value) : Exit.fail(systemError(method, pathOrDescriptor, error)))
    })
  } catch (error) {
    done(Exit.fail(systemError(method, pathOrDescriptor, error as NodeJS.ErrnoException)))
  }
}

const call = <A>(
  method: string,
  pathOrDescriptor: string | number,
  run: (callback: Callback<A>) => void
): Effect.Effect<A, PlatformError> =>
  Effect.uninterruptible(Effect.async<A, PlatformError>((resume) => runCall(method, pathOrDescriptor, run, resume)))

/**
 * `call` with an argument (a buffer) that the function handed to
 * `Effect.async` lets go of as soon as the call starts. A buffer that
 * function captures outlives V8's young-generation collections and waits
 * for a mark-compact, which V8 starts only once 64 MiB of such buffers have
 * piled up; held by the node:fs request alone (or by a closure of
 * `Effect.suspend` or `Effect.map`), it is freed by the next scavenge
 * (docs/NOTES.md, "writeStream memory").
 */
const callWith = <I, A>(
  method: string,
  pathOrDescriptor: string | number,
  input: I,
  run: (input: I, callback: Callback<A>) => void
): Effect.Effect<A, PlatformError> => Effect.suspend(() => callHolding(method, pathOrDescriptor, { input }, run))

// A function of its own, so that the closure handed to `Effect.async` does
// not share a scope (a V8 context) with `input`.
const callHolding = <I, A>(
  method: string,
  pathOrDescriptor: string | number,
  held: { input: I | undefined },
  run: (input: I, callback: Callback<A>) => void
): Effect.Effect<A, PlatformError> =>
  call<A>(method, pathOrDescriptor, (callback) => {
    const input = held.input as I // set until this, the only use, runs
    held.input = undefined
    run(input, callback)
  })

/**
 * Starts the call now; its result waits for `await` or `settle`. No fiber:
 * the callback records the result and wakes whoever waits.
 */
const start = <A>(
  method: string,
  pathOrDescriptor: string | number,
  run: (callback: Callback<A>) => void
): Effect.Effect<Pending<A>> =>
  Effect.sync(() => {
    const outcome = Outcome.make<A, PlatformError>()
    runCall(method, pathOrDescriptor, run, outcome.complete)
    // uninterruptible: the call runs on whatever happens to the fiber
    const wait = Effect.uninterruptible(outcome.await())
    return {
      await: wait,
      settle: Effect.map(Effect.exit(wait), (exit) => Exit.isSuccess(exit) ? Option.some(exit.value) : Option.none())
    }
  })

const makeHandle = (fd: number): Handle => {
  let position = 0
  const writeAt = (data: Uint8Array, callback: Callback<number>) =>
    NFS.write(fd, data, 0, data.length, position, callback)
  const advance = (written: number) => {
    position += written
    return written
  }
  return {
    write: (data) => Effect.map(callWith("write", fd, data, writeAt), advance),
    sync: call<void>("sync", fd, (callback) => NFS.fsync(fd, callback)),
    close: call<void>("close", fd, (callback) => NFS.close(fd, callback)),
    closeInBackground: Effect.sync(() => NFS.close(fd, () => {})),
    startIdentity: start<FileId>(
      "stat",
      fd,
      (callback) =>
        NFS.fstat(
          fd,
          (error, stats) => callback(error, error === null ? { dev: stats.dev, ino: stats.ino } : undefined as never)
        )
    ),
    startClose: start<void>("close", fd, (callback) => NFS.close(fd, callback))
  }
}

/** A `File.Info` as the platform's Node layer makes it from `Stats`. */
const fileInfo = (stats: NFS.Stats): FileSystem.File.Info => ({
  type: stats.isFile()
    ? "File"
    : stats.isDirectory()
    ? "Directory"
    : stats.isSymbolicLink()
    ? "SymbolicLink"
    : stats.isBlockDevice()
    ? "BlockDevice"
    : stats.isCharacterDevice()
    ? "CharacterDevice"
    : stats.isFIFO()
    ? "FIFO"
    : stats.isSocket()
    ? "Socket"
    : "Unknown",
  mtime: Option.fromNullable(stats.mtime),
  atime: Option.fromNullable(stats.atime),
  birthtime: Option.fromNullable(stats.birthtime),
  dev: stats.dev,
  rdev: Option.fromNullable(stats.rdev),
  ino: Option.fromNullable(stats.ino),
  mode: stats.mode,
  nlink: Option.fromNullable(stats.nlink),
  uid: Option.fromNullable(stats.uid),
  gid: Option.fromNullable(stats.gid),
  size: FileSystem.Size(stats.size),
  blksize: Option.map(Option.fromNullable(stats.blksize), FileSystem.Size),
  blocks: Option.fromNullable(stats.blocks)
})

/** A node:fs call for `directCalls`: its error as the platform's; a synchronous throw too. */
const directCall = <A>(
  method: string,
  pathOrDescriptor: string | number,
  run: (callback: Callback<A>) => void,
  callback: DirectCallback<A>
): void => {
  try {
    run((error, value) => {
      if (error === null) callback(undefined, value)
      else callback(systemError(method, pathOrDescriptor, error), value)
    })
  } catch (error) {
    callback(systemError(method, pathOrDescriptor, error as NodeJS.ErrnoException), undefined as never)
  }
}

/** The calls of `directReplace`, made with node:fs. */
const directCalls: DirectCalls = {
  lstat: (path, callback) =>
    directCall<FileSystem.File.Info>(
      "lstat",
      path,
      (done) => NFS.lstat(path, (error, stats) => done(error, error === null ? fileInfo(stats) : undefined as never)),
      callback
    ),
  create: (path, mode, callback) => directCall("open", path, (done) => NFS.open(path, "wx", mode, done), callback),
  write: (fd, data, offset, position, callback) =>
    directCall("write", fd, (done) => NFS.write(fd, data, offset, data.length - offset, position, done), callback),
  fsync: (fd, callback) => directCall("sync", fd, (done) => NFS.fsync(fd, done), callback),
  close: (fd, callback) => directCall("close", fd, (done) => NFS.close(fd, done), callback),
  openDirectory: (path, callback) => directCall("open", path, (done) => NFS.open(path, "r", done), callback),
  rename: (from, to, callback) => directCall("rename", from, (done) => NFS.rename(from, to, done), callback),
  remove: (path, callback) => directCall("remove", path, (done) => NFS.unlink(path, done), callback),
  chmod: (path, mode, callback) => directCall("chmod", path, (done) => NFS.chmod(path, mode, done), callback),
  chown: (path, uid, gid, callback) => directCall("chown", path, (done) => NFS.chown(path, uid, gid, done), callback)
}

export const nodeHandles: Handles = {
  direct: directCalls,
  startLinkStat: (path) =>
    start<FileSystem.File.Info>(
      "lstat",
      path,
      (callback) =>
        NFS.lstat(path, (error, stats) => callback(error, error === null ? fileInfo(stats) : undefined as never))
    ),
  create: (path, mode) =>
    Effect.map(call<number>("open", path, (callback) => NFS.open(path, "wx", mode, callback)), makeHandle),
  openDirectory: (path) =>
    Effect.map(call<number>("open", path, (callback) => NFS.open(path, "r", callback)), makeHandle),
  startOpenDirectory: (path) =>
    start<Handle>(
      "open",
      path,
      (callback) =>
        NFS.open(path, "r", (error, fd) => callback(error, error === null ? makeHandle(fd) : undefined as never))
    )
}

/**
 * Whether `fs` is Node's own file system: the one `nodeHandles` opens files
 * on. It and `node:fs` must find the same directory (device, inode and
 * creation time of the system's temporary directory; not its modification
 * time, which other processes change at any moment).
 */
export const isNodeFileSystem = (fs: FileSystem.FileSystem): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    const directory = OS.tmpdir()
    let real: NFS.Stats
    try {
      real = NFS.statSync(directory)
    } catch {
      return Effect.succeed(false)
    }
    return fs.stat(directory).pipe(
      Effect.map((info) =>
        info.dev === real.dev && Option.getOrUndefined(info.ino) === real.ino &&
        Option.getOrUndefined(info.birthtime)?.getTime() === real.birthtime.getTime()
      ),
      Effect.orElseSucceed(() => false)
    )
  })
