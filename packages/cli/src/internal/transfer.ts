/**
 * `export` and `import`: copying sessions between two `SessionStorage`
 * stores (the JSON Lines file and a database), streaming, and skipping every
 * session the target already holds byte for byte, so that a second run
 * writes nothing.
 */
import { InterviewSession, type SessionStorage, type SessionStorageError } from "@intent/session-storage"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { UsageError } from "./runCommand.js"

/**
 * The store a database URL names: `postgres://` or `postgresql://` for
 * PostgreSQL, `sqlite:<file>` for an SQLite file. The driver is imported
 * only then, so that the other commands do not load it.
 */
export const databaseLayer = (
  url: string,
  table: string | undefined
): Either.Either<Layer.Layer<SessionStorage.SessionStorage, SessionStorageError.StorageFailure>, UsageError> => {
  const tableOption = table === undefined ? {} : { table }
  if (/^postgres(ql)?:\/\//.test(url)) {
    return Either.right(Layer.unwrapEffect(
      Effect.map(
        Effect.promise(() => import("@intent/session-storage-sql/Pg")),
        (Pg) => Pg.layer({ url, ...tableOption })
      )
    ))
  }
  const sqlite = /^sqlite:(?:\/\/)?(.+)$/.exec(url)
  if (sqlite?.[1] !== undefined) {
    const filename = sqlite[1]
    return Either.right(Layer.unwrapEffect(
      Effect.map(
        Effect.promise(() => import("@intent/session-storage-sql/Sqlite")),
        (Sqlite) => Sqlite.layer({ filename, ...tableOption })
      )
    ))
  }
  return Either.left(
    new UsageError({ message: `not a database URL: ${JSON.stringify(url)} (postgres://... or sqlite:<file>)` })
  )
}

/** What a copy did. */
export interface TransferReport {
  /** sessions read from the source */
  readonly read: number
  /** sessions written to the target */
  readonly saved: number
  /** sessions the target already held, byte for byte */
  readonly unchanged: number
}

const text = (session: InterviewSession.InterviewSession) => Either.getOrThrow(InterviewSession.encodeLine(session))

/**
 * Copies every session of `from` (in its order of last save) into `to`,
 * one at a time: memory does not grow with the store. A session that `to`
 * holds with the same JSON text is left alone; any other is saved. Sessions
 * of `to` that `from` lacks stay. `onProgress` sees the running report.
 */
export const copySessions = (
  from: SessionStorage.SessionStorage,
  to: SessionStorage.SessionStorage,
  onProgress: (report: TransferReport) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const report = { read: 0, saved: 0, unchanged: 0 }
    yield* from.stream().pipe(
      Stream.runForEach((session) =>
        Effect.gen(function*() {
          const held = yield* to.get(session.id).pipe(
            Effect.map((existing) => text(existing) === text(session)),
            Effect.catchTag("SessionNotFound", () => Effect.succeed(false))
          )
          report.read++
          if (held) {
            report.unchanged++
          } else {
            yield* to.save(session)
            report.saved++
          }
          yield* onProgress(report)
        })
      )
    )
    return report as TransferReport
  })
