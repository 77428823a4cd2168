import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import type { CleanupReport } from "../AtomicFile.js"
import type { InvalidInput } from "../AtomicFileError.js"
import { CleanupFailure } from "../AtomicFileError.js"
import { errorCode, reasonOf } from "./errno.js"
import { isProcessAlive } from "./processInfo.js"
import { parseTempName } from "./tempName.js"
import { validatePath } from "./writeSteps.js"

/**
 * Removes the temporary files that writers which are no longer running left
 * in `directory` (not recursive). A file is removed only if its name is one
 * this library makes, it is a regular file, and the pid in its name is not a
 * running process on this machine; files of running writers are reported as
 * kept. Everything else is never touched.
 */
export const cleanupStale = (
  fs: FileSystem.FileSystem,
  path: Path.Path,
  directory: string
): Effect.Effect<CleanupReport, InvalidInput | CleanupFailure> =>
  Effect.gen(function*() {
    yield* validatePath("cleanupStale", directory)
    const absolute = path.resolve(directory)
    const fail = (at: string) => (error: Parameters<typeof reasonOf>[0]) =>
      new CleanupFailure({
        operation: "cleanupStale",
        path: absolute,
        tempPath: at,
        reason: reasonOf(error),
        cause: error
      })
    const names = yield* Effect.mapError(fs.readDirectory(absolute), fail(absolute))
    const removed: Array<string> = []
    const kept: Array<string> = []
    for (const name of names.slice().sort()) {
      const parsed = parseTempName(name)
      if (parsed === undefined) {
        continue
      }
      const file = path.join(absolute, name)
      if (isProcessAlive(parsed.pid)) {
        kept.push(file)
        continue
      }
      // a link never is one of ours, whatever its name: leave it alone
      const isLink = yield* fs.readLink(file).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
      if (isLink) {
        continue
      }
      const info = yield* fs.stat(file).pipe(
        Effect.map((info) => info.type),
        Effect.catchAll((error) =>
          errorCode(error) === "ENOENT" ? Effect.succeed("Gone" as const) : Effect.fail(fail(file)(error))
        )
      )
      if (info !== "File") {
        continue
      }
      yield* fs.remove(file).pipe(
        Effect.zipRight(Effect.sync(() => removed.push(file))),
        Effect.catchAll((error) => errorCode(error) === "ENOENT" ? Effect.void : Effect.fail(fail(file)(error)))
      )
    }
    return { directory: absolute, removed, kept }
  })
