import type { PlatformError } from "@effect/platform/Error"
import { FileErrorReason } from "../AtomicFileError.js"

/**
 * The operating system's error code of a platform error. The Node layer keeps
 * the errno in `cause.code`; `SystemError.reason` alone folds most codes into
 * `Unknown` or `BadResource`, so it is only the fallback.
 */
export const errorCode = (error: PlatformError): string => {
  const cause: unknown = error.cause
  if (typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string") {
    return cause.code
  }
  if (error._tag === "BadArgument") {
    return "EINVAL"
  }
  switch (error.reason) {
    case "NotFound":
      return "ENOENT"
    case "PermissionDenied":
      return "EACCES"
    case "AlreadyExists":
      return "EEXIST"
    case "Busy":
      return "EBUSY"
    case "TimedOut":
      return "ETIMEDOUT"
    case "WouldBlock":
      return "EAGAIN"
    case "UnexpectedEof":
    case "WriteZero":
      return "EIO"
    default:
      return "UNKNOWN"
  }
}

/** Maps a platform error to the `FileErrorReason` its errno stands for. */
export const reasonOf = (error: PlatformError): FileErrorReason => {
  const code = errorCode(error)
  switch (code) {
    case "EACCES":
    case "EPERM":
      return FileErrorReason.PermissionDenied({ code })
    case "ENOSPC":
    case "EDQUOT":
      return FileErrorReason.DiskFull({ code })
    case "EIO":
      return FileErrorReason.IOError({ code })
    case "ENOENT":
      return FileErrorReason.NotFound({ code })
    case "EXDEV":
      return FileErrorReason.CrossDevice({ code })
    case "EISDIR":
      return FileErrorReason.IsDirectory({ code })
    case "ENOTDIR":
      return FileErrorReason.NotDirectory({ code })
    case "EROFS":
      return FileErrorReason.ReadOnlyFileSystem({ code })
    case "ENAMETOOLONG":
      return FileErrorReason.NameTooLong({ code })
    case "EMFILE":
    case "ENFILE":
      return FileErrorReason.TooManyOpenFiles({ code })
    default:
      return FileErrorReason.Other({ code, description: error.description ?? error.message })
  }
}
