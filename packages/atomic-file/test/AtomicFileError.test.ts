import { BadArgument, SystemError } from "@effect/platform/Error"
import { describe, expect, it } from "@effect/vitest"
import {
  CleanupFailure,
  DirectoryCreationFailure,
  DirectorySyncFailure,
  FileErrorReason,
  formatError,
  InvalidInput,
  RenameFailure,
  TargetResolutionFailure,
  TempWriteFailure
} from "../src/AtomicFileError.js"
import { errorCode, reasonOf } from "../src/internal/errno.js"
import { systemError } from "./support.js"

describe("errno mapping", () => {
  const cases: ReadonlyArray<readonly [string, FileErrorReason["_tag"]]> = [
    ["EACCES", "PermissionDenied"],
    ["EPERM", "PermissionDenied"],
    ["ENOSPC", "DiskFull"],
    ["EDQUOT", "DiskFull"],
    ["EIO", "IOError"],
    ["ENOENT", "NotFound"],
    ["EXDEV", "CrossDevice"],
    ["EISDIR", "IsDirectory"],
    ["ENOTDIR", "NotDirectory"],
    ["EROFS", "ReadOnlyFileSystem"],
    ["ENAMETOOLONG", "NameTooLong"],
    ["EMFILE", "TooManyOpenFiles"],
    ["ENFILE", "TooManyOpenFiles"],
    ["EBUSY", "Other"]
  ]
  for (const [code, tag] of cases) {
    it(`${code} → ${tag}, code kept`, () => {
      const reason = reasonOf(systemError("open", code, "/x"))
      expect(reason._tag).toBe(tag)
      expect(reason.code).toBe(code)
    })
  }

  it("falls back to the platform reason when there is no errno", () => {
    const error = new SystemError({ module: "FileSystem", method: "stat", reason: "NotFound" })
    expect(errorCode(error)).toBe("ENOENT")
    expect(reasonOf(error)._tag).toBe("NotFound")
    const busy = new SystemError({ module: "FileSystem", method: "stat", reason: "Busy", description: "busy" })
    expect(reasonOf(busy)).toEqual(FileErrorReason.Other({ code: "EBUSY", description: "busy" }))
  })

  it("a BadArgument is Other(EINVAL)", () => {
    const error = new BadArgument({ module: "FileSystem", method: "open", description: "bad flag" })
    expect(reasonOf(error)).toEqual(FileErrorReason.Other({ code: "EINVAL", description: "bad flag" }))
  })
})

describe("formatError", () => {
  const reason = FileErrorReason.DiskFull({ code: "ENOSPC" })
  const base = { operation: "writeFile" as const, path: "/data/s.jsonl" }
  const cases = [
    [new InvalidInput({ ...base, message: "the path is empty" }), "nothing was written"],
    [new TargetResolutionFailure({ ...base, reason }), "the target is unchanged"],
    [new DirectoryCreationFailure({ ...base, directory: "/data", reason }), "the target is unchanged"],
    [new TempWriteFailure({ ...base, tempPath: "/data/.s.tmp", reason }), "the target is unchanged"],
    [new RenameFailure({ ...base, tempPath: "/data/.s.tmp", reason }), "the target is unchanged"],
    [new DirectorySyncFailure({ ...base, directory: "/data", reason }), "may not survive a power cut"],
    [new CleanupFailure({ ...base, tempPath: "/data/.s.tmp", reason }), "left behind"]
  ] as const
  for (const [error, state] of cases) {
    it(`${error._tag}: one line with operation, path, reason and state`, () => {
      const line = formatError(error)
      expect(line).not.toContain("\n")
      expect(line.startsWith(`writeFile "/data/s.jsonl": `)).toBe(true)
      expect(line).toContain(state)
      if (error._tag !== "InvalidInput") {
        expect(line).toContain("disk full (ENOSPC)")
      }
    })
  }

  it("errors are tagged and carry their fields", () => {
    const error = new RenameFailure({ ...base, tempPath: "/t", reason: FileErrorReason.CrossDevice({ code: "EXDEV" }) })
    expect(error._tag).toBe("RenameFailure")
    expect(error.reason._tag).toBe("CrossDevice")
    expect(error.tempPath).toBe("/t")
    expect(error).toBeInstanceOf(Error)
  })
})
