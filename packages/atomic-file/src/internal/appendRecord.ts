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

/** Rescues the fragment of an interrupted write found at the end of the file. */
export interface TornTailRescue<E> {
  /** true when the last line (it has no newline) is a fragment, not a complete record */
  readonly isTorn: (fragment: Uint8Array) => boolean
  /** keeps the fragment elsewhere, durably; the file is cut only once it succeeds */
  readonly rescue: (fragment: Uint8Array) => Effect.Effect<void, E>
}

const TAIL_CHUNK = 64 * 1024

/** Bytes [from, to) of `file`, fewer only if the file is shorter. */
const readRange = (file: FileSystem.File, from: number, to: number): Effect.Effect<Uint8Array, PlatformError> =>
  Effect.gen(function*() {
    const out = new Uint8Array(to - from)
    let filled = 0
    while (filled < out.length) {
      yield* file.seek(from + filled, "start")
      const count = Number(yield* file.read(out.subarray(filled)))
      if (count <= 0) break
      filled += count
    }
    return out.subarray(0, filled)
  })

/**
 * The last line of a file of `length` bytes that does not end with a
 * newline: where it starts, and its bytes. Reads backward from the end until
 * the newline before it, so only the fragment (and at most one chunk more) is
 * read, however long the file.
 */
const readUnterminatedTail = (file: FileSystem.File, length: number) =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    let end = length
    let start = 0
    while (end > 0) {
      const from = Math.max(0, end - TAIL_CHUNK)
      const chunk = yield* readRange(file, from, end)
      const newline = chunk.lastIndexOf(NEWLINE)
      if (newline !== -1) {
        parts.unshift(chunk.subarray(newline + 1))
        start = from + newline + 1
        break
      }
      parts.unshift(chunk)
      end = from
    }
    const bytes = new Uint8Array(length - start)
    let at = 0
    for (const part of parts) {
      bytes.set(part, at)
      at += part.length
    }
    return { start, bytes }
  })

/**
 * Appends `record` plus a newline to `target`. A last line that has no
 * newline is terminated first (a file written by the original tool ends that
 * way; its last line is a complete record and is never cut), unless
 * `tornTail` says it is the fragment of an interrupted write: then the
 * fragment is rescued (`tornTail.rescue`, durable before anything else
 * happens), the file is cut back to the end of its last complete line (and
 * synced, per durability), and the record is appended there. A crash between
 * the rescue and the cut leaves the fragment in both places, never in
 * neither. On a failed write the file is truncated back to the length it had
 * before the record (after the cut, if there was one).
 */
export const appendRecord = <E = never>(
  ctx: WriteContext,
  target: Target,
  record: Uint8Array,
  options: {
    readonly durability: Durability
    readonly mode: number | undefined
    readonly createParents: boolean
    readonly tornTail?: TornTailRescue<E> | undefined
  }
): Effect.Effect<void, AppendFailure | DirectoryCreationFailure | DirectorySyncFailure | E> =>
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
    let length = Number((yield* Effect.mapError(file.stat, (error) => fail(error, true))).size)

    let terminate = false
    if (length > 0) {
      const last = new Uint8Array(1)
      yield* Effect.mapError(
        Effect.zipRight(file.seek(length - 1, "start"), file.read(last)),
        (error) => fail(error, true)
      )
      terminate = last[0] !== NEWLINE
    }
    // Rare: only after a crash tore an append. The fragment is rescued before
    // the cut, so that it is never destroyed.
    if (terminate && options.tornTail !== undefined) {
      const tail = yield* Effect.mapError(readUnterminatedTail(file, length), (error) => fail(error, true))
      if (options.tornTail.isTorn(tail.bytes)) {
        yield* options.tornTail.rescue(tail.bytes)
        yield* file.truncate(tail.start).pipe(
          Effect.zipRight(options.durability === "none" ? Effect.void : file.sync),
          // the fragment is safe in the sidecar; the file holds no part of the record
          Effect.mapError((error) => fail(error, true))
        )
        length = tail.start
        terminate = false
      }
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
    yield* writeFully((data) => file.write(data), file.fd, bytes).pipe(
      Effect.zipRight(options.mode !== undefined && !exists ? fs.chmod(target.path, options.mode) : Effect.void),
      Effect.zipRight(options.durability === "none" ? Effect.void : file.sync),
      Effect.catchAll(undo)
    )
    if (options.durability === "full" && !exists) {
      yield* syncDirectory(ctx, target)
    }
  }))
