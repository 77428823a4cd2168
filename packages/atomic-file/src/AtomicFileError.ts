/**
 * Errors of `AtomicFile`: one tagged error per step of the write algorithm,
 * each carrying the paths involved and a precise `FileErrorReason`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"

/**
 * Why a file system call failed, mapped from the operating system's error
 * code (`code` keeps that code, for instance `"ENOSPC"`).
 *
 * @since 0.1.0
 * @category models
 */
export type FileErrorReason = Data.TaggedEnum<{
  /** EACCES, EPERM */
  PermissionDenied: { readonly code: string }
  /** ENOSPC, EDQUOT */
  DiskFull: { readonly code: string }
  /** EIO */
  IOError: { readonly code: string }
  /** ENOENT */
  NotFound: { readonly code: string }
  /** EXDEV: a rename across file systems */
  CrossDevice: { readonly code: string }
  /** EISDIR */
  IsDirectory: { readonly code: string }
  /** ENOTDIR */
  NotDirectory: { readonly code: string }
  /** EROFS */
  ReadOnlyFileSystem: { readonly code: string }
  /** ENAMETOOLONG */
  NameTooLong: { readonly code: string }
  /** EMFILE, ENFILE */
  TooManyOpenFiles: { readonly code: string }
  /** any other code, with the system's description */
  Other: { readonly code: string; readonly description: string }
}>

/**
 * Constructors and matchers of `FileErrorReason`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const FileErrorReason = Data.taggedEnum<FileErrorReason>()

/**
 * The public operation that failed.
 *
 * @since 0.1.0
 * @category models
 */
export type Operation =
  | "writeFile"
  | "writeFileString"
  | "writeStream"
  | "update"
  | "append"
  | "remove"
  | "cleanupStale"
  | "lock"

/**
 * The path is empty, only whitespace, or contains a NUL byte. Nothing was
 * touched.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Data.TaggedError("InvalidInput")<{
  readonly operation: Operation
  readonly path: string
  readonly message: string
}> {}

/**
 * The target could not be inspected or cannot be replaced: it is a
 * directory, a symbolic link loop, or `stat`/`readlink` failed. The target is
 * unchanged.
 *
 * @since 0.1.0
 * @category errors
 */
export class TargetResolutionFailure extends Data.TaggedError("TargetResolutionFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly reason: FileErrorReason
  readonly cause?: unknown
}> {}

/**
 * A missing parent directory could not be created (or `createParents` is
 * off), or a parent is not a directory. The target is unchanged; directories
 * created before the failure stay, empty.
 *
 * @since 0.1.0
 * @category errors
 */
export class DirectoryCreationFailure extends Data.TaggedError("DirectoryCreationFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly directory: string
  readonly reason: FileErrorReason
  readonly cause?: unknown
}> {}

/**
 * Creating, writing, syncing, or setting the mode or owner of the temporary
 * file failed. The target is unchanged and the temporary file was removed.
 *
 * @since 0.1.0
 * @category errors
 */
export class TempWriteFailure extends Data.TaggedError("TempWriteFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly tempPath: string
  readonly reason: FileErrorReason
  readonly cause?: unknown
}> {}

/**
 * The rename of the temporary file over the target failed. The target is
 * unchanged and the temporary file was removed.
 *
 * @since 0.1.0
 * @category errors
 */
export class RenameFailure extends Data.TaggedError("RenameFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly tempPath: string
  readonly reason: FileErrorReason
  readonly cause?: unknown
}> {}

/**
 * The rename succeeded, so the target holds the new content and every reader
 * sees it, but syncing its directory (durability `"full"`) or a directory
 * this call created failed: a power cut may still bring back the old content.
 *
 * @since 0.1.0
 * @category errors
 */
export class DirectorySyncFailure extends Data.TaggedError("DirectorySyncFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly directory: string
  readonly reason: FileErrorReason
  readonly cause?: unknown
}> {}

/**
 * A temporary file could not be removed. A write logs it (at warning level)
 * and keeps its own error; `cleanupStale` returns it. The target is not
 * affected; the temporary file is left behind.
 *
 * @since 0.1.0
 * @category errors
 */
export class CleanupFailure extends Data.TaggedError("CleanupFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly tempPath: string
  readonly reason: FileErrorReason
  readonly cause?: unknown
}> {}

/**
 * Reading the current content for `update` failed. The target is unchanged.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadFailure extends Data.TaggedError("ReadFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly reason: FileErrorReason
  readonly cause?: unknown
}> {}

/**
 * The file is larger than the `maxBytes` the caller allowed to read into
 * memory. The target is unchanged.
 *
 * @since 0.1.0
 * @category errors
 */
export class FileTooLarge extends Data.TaggedError("FileTooLarge")<{
  readonly operation: Operation
  readonly path: string
  readonly size: number
  readonly maxBytes: number
}> {}

/**
 * Writing or syncing an appended record failed. When `truncated` is true the
 * file was cut back to its length before the call, so it is unchanged (but
 * for a torn last line that `tornTail` already moved to its sidecar); when
 * false (the truncate failed too) it may end with a partial record, which a
 * reader sees as a torn final line.
 *
 * @since 0.1.0
 * @category errors
 */
export class AppendFailure extends Data.TaggedError("AppendFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly reason: FileErrorReason
  readonly truncated: boolean
  readonly cause?: unknown
}> {}

/**
 * Removing the file failed (`NotFound` when there was none). When the
 * unlink succeeded but syncing the directory failed, `removed` is true: the
 * file is gone for every reader but may come back after a power cut.
 *
 * @since 0.1.0
 * @category errors
 */
export class RemoveFailure extends Data.TaggedError("RemoveFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly reason: FileErrorReason
  readonly removed: boolean
  readonly cause?: unknown
}> {}

/**
 * The cross-process lock was not acquired within the timeout. Nothing was
 * read or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockTimeout extends Data.TaggedError("LockTimeout")<{
  readonly operation: Operation
  readonly path: string
  readonly lockPath: string
  readonly timeout: Duration.Duration
}> {}

/**
 * The lock file could not be opened or locked (or the kernel-lock addon could
 * not be loaded). Nothing was read or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockFailure extends Data.TaggedError("LockFailure")<{
  readonly operation: Operation
  readonly path: string
  readonly lockPath: string
  readonly reason: FileErrorReason
  readonly cause?: unknown
}> {}

/**
 * The errors of acquiring a `FileLock`.
 *
 * @since 0.1.0
 * @category models
 */
export type LockError = LockTimeout | LockFailure

/**
 * Every error a write can fail with.
 *
 * @since 0.1.0
 * @category models
 */
export type WriteError =
  | InvalidInput
  | TargetResolutionFailure
  | DirectoryCreationFailure
  | TempWriteFailure
  | RenameFailure
  | DirectorySyncFailure

/**
 * Every error of this module.
 *
 * @since 0.1.0
 * @category models
 */
export type AtomicFileError =
  | WriteError
  | CleanupFailure
  | ReadFailure
  | FileTooLarge
  | AppendFailure
  | RemoveFailure
  | LockError

const reasonText = (reason: FileErrorReason): string =>
  FileErrorReason.$match(reason, {
    PermissionDenied: ({ code }) => `permission denied (${code})`,
    DiskFull: ({ code }) => `disk full (${code})`,
    IOError: ({ code }) => `I/O error (${code})`,
    NotFound: ({ code }) => `not found (${code})`,
    CrossDevice: ({ code }) => `cross-device rename (${code})`,
    IsDirectory: ({ code }) => `is a directory (${code})`,
    NotDirectory: ({ code }) => `not a directory (${code})`,
    ReadOnlyFileSystem: ({ code }) => `read-only file system (${code})`,
    NameTooLong: ({ code }) => `name too long (${code})`,
    TooManyOpenFiles: ({ code }) => `too many open files (${code})`,
    Other: ({ code, description }) => `${description} (${code})`
  })

/**
 * One human-readable line: the operation, the path, what failed and why, and
 * the state the target is left in.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatError = (error: AtomicFileError): string => {
  const head = `${error.operation} ${JSON.stringify(error.path)}`
  switch (error._tag) {
    case "InvalidInput":
      return `${head}: invalid input: ${error.message}; nothing was written`
    case "TargetResolutionFailure":
      return `${head}: cannot resolve the target: ${reasonText(error.reason)}; the target is unchanged`
    case "DirectoryCreationFailure":
      return `${head}: cannot create directory ${JSON.stringify(error.directory)}: ${
        reasonText(error.reason)
      }; the target is unchanged`
    case "TempWriteFailure":
      return `${head}: cannot write the temporary file ${JSON.stringify(error.tempPath)}: ${
        reasonText(error.reason)
      }; the target is unchanged`
    case "RenameFailure":
      return `${head}: cannot rename the temporary file over the target: ${
        reasonText(error.reason)
      }; the target is unchanged`
    case "DirectorySyncFailure":
      return `${head}: cannot sync directory ${JSON.stringify(error.directory)}: ${
        reasonText(error.reason)
      }; the target has the new content, but it may not survive a power cut`
    case "ReadFailure":
      return `${head}: cannot read the current content: ${reasonText(error.reason)}; the target is unchanged`
    case "FileTooLarge":
      return `${head}: the file has ${error.size} bytes, more than the ${error.maxBytes} allowed in memory; ` +
        `the target is unchanged`
    case "AppendFailure":
      return `${head}: cannot append the record: ${reasonText(error.reason)}; ${
        error.truncated ? "the file is unchanged" : "the file may end with a partial record"
      }`
    case "RemoveFailure":
      return `${head}: cannot remove the file: ${reasonText(error.reason)}; ${
        error.removed ? "it is gone, but may come back after a power cut" : "it is unchanged"
      }`
    case "LockTimeout":
      return `${head}: the lock ${JSON.stringify(error.lockPath)} was not acquired within ${
        Duration.format(error.timeout)
      }; nothing was changed`
    case "LockFailure":
      return `${head}: cannot lock ${JSON.stringify(error.lockPath)}: ${reasonText(error.reason)}; nothing was changed`
    case "CleanupFailure":
      return `${head}: cannot remove the temporary file ${JSON.stringify(error.tempPath)}: ${
        reasonText(error.reason)
      }; it is left behind (cleanupStale removes it later)`
  }
}
