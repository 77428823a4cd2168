/**
 * The steps of `append`: one newline-terminated record in a single write in
 * append mode, run under the cross-process lock (so that the check of the
 * last byte and the write are not interleaved with another writer, and so
 * that a compaction through `update` never renames over an append).
 */
import type { PlatformError } from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Durability } from "../AtomicFile.js"
import {
  AppendFailure,
  type DirectoryCreationFailure,
  type DirectorySyncFailure,
  InvalidInput
} from "../AtomicFileError.js"
import { errorCode, reasonOf } from "./errno.js"
import { createParents, syncDirectory, type Target, type WriteContext, writeFully } from "./writeSteps.js"

const NEWLINE = 0x0a

export const validateRecord = (
  ctx: WriteContext,
  path: string,
  record: Uint8Array
): Effect.Effect<void, InvalidInput> =>
  record.includes(NEWLINE)
    ? Effect.fail(
      new InvalidInput({
        operation: ctx.operation,
        path,
        message: "the record contains a newline: it must be one line"
      })
    )
    : Effect.void

/**
 * Appends `record` plus a newline to `target`, first terminating a last line
 * that has no newline (a file written by the original tool ends that way; its
 * last line is a complete record and is never cut). On a failed write the
 * file is truncated back to its previous length.
 */
export const appendRecord = (
  ctx: WriteContext,
  target: Target,
  record: Uint8Array,
  options: { readonly durability: Durability; readonly mode: number | undefined; readonly createParents: boolean }
): Effect.Effect<void, AppendFailure | DirectoryCreationFailure | DirectorySyncFailure> =>
  Effect.scoped(Effect.gen(function*() {
    const { fs } = ctx
    const fail = (error: PlatformError, truncated: boolean) =>
      new AppendFailure({
        operation: ctx.operation,
        path: target.path,
        reason: reasonOf(error),
        truncated,
        cause: error
      })
    const exists = Option.isSome(target.existing)
    const open = (flag: FileSystem.OpenFlag) => fs.open(target.path, { flag, mode: 0o666 })

    // An existing file is opened for append; a missing one is created
    // exclusively, so that a creation is known (its directory entry must be
    // synced) and missing parents can be made on ENOENT.
    const file = yield* (exists ? open("a+") : open("ax+")).pipe(
      Effect.catchAll((error) => {
        const code = errorCode(error)
        if (!exists && code === "EEXIST") return Effect.mapError(open("a+"), (error) => fail(error, true))
        if (!exists && code === "ENOENT" && options.createParents) {
          return Effect.zipRight(
            createParents(ctx, target, options.durability === "full"),
            Effect.mapError(open("ax+"), (error) => fail(error, true))
          )
        }
        return Effect.fail(fail(error, true))
      })
    )
    // the length of the open file itself, not of whatever the path names now
    const length = Number((yield* Effect.mapError(file.stat, (error) => fail(error, true))).size)

    let terminate = false
    if (length > 0) {
      const last = new Uint8Array(1)
      yield* Effect.mapError(
        Effect.zipRight(file.seek(length - 1, "start"), file.read(last)),
        (error) => fail(error, true)
      )
      terminate = last[0] !== NEWLINE
    }
    const offset = terminate ? 1 : 0
    const bytes = new Uint8Array(offset + record.length + 1)
    if (terminate) bytes[0] = NEWLINE
    bytes.set(record, offset)
    bytes[bytes.length - 1] = NEWLINE

    // Any failure from here on cuts the file back to its old length: a
    // failed append leaves no partial record behind.
    const undo = (error: PlatformError) =>
      Effect.flatMap(
        Effect.either(file.truncate(length)),
        (truncated) => Effect.fail(fail(error, truncated._tag === "Right"))
      )
    yield* writeFully(file, bytes).pipe(
      Effect.zipRight(options.mode !== undefined && !exists ? fs.chmod(target.path, options.mode) : Effect.void),
      Effect.zipRight(options.durability === "none" ? Effect.void : file.sync),
      Effect.catchAll(undo)
    )
    if (options.durability === "full" && !exists) {
      yield* syncDirectory(ctx, target)
    }
  }))
