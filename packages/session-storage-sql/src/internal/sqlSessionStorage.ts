import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { InterviewSession, SessionStorageError } from "@intent/session-storage"
import type { CompactionReport, IntegrityReport } from "@intent/session-storage/SessionStorage"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { SqlSessionStorageOptions } from "../SqlSessionStorage.js"
import { migrate, namesOf, TABLE_NAME } from "./migrations.js"

const MiB = 1024 * 1024
const MAX_PROBLEMS_KEPT = 1000

/** A row as read back: its position in save order, id and JSON text. */
interface Row {
  readonly seq: number | string
  readonly id: string
  readonly body: string
}

type Dialect = "pg" | "sqlite"

export const make = (options: SqlSessionStorageOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const tableName = options.table ?? "intent_sessions"
    if (!TABLE_NAME.test(tableName)) {
      return yield* Effect.dieMessage(
        `table ${JSON.stringify(tableName)}: use lowercase letters, digits and _ (at most 41 characters)`
      )
    }
    const dialect = sql.onDialectOrElse<Dialect | undefined, Dialect, Dialect>({
      pg: () => "pg",
      sqlite: () => "sqlite",
      orElse: () => undefined
    })
    if (dialect === undefined) {
      return yield* Effect.dieMessage("SqlSessionStorage runs on PostgreSQL and SQLite only")
    }
    const names = namesOf(tableName)
    const table = sql(names.table)
    const path = options.description ?? `${dialect}:${tableName}`
    const limits = {
      maxIdLength: Math.min(options.maxIdLength ?? InterviewSession.MAX_ID_LENGTH, InterviewSession.MAX_ID_LENGTH),
      maxBytes: options.maxBytes ?? MiB
    }
    const strict = options.strict ?? false
    const pageSize = options.pageSize ?? 256

    const failure = (operation: string) => (cause: SqlError | SessionStorageError.DatabaseError) =>
      new SessionStorageError.StorageFailure({ operation, path, cause })

    // -- setup -----------------------------------------------------------------

    if (dialect === "sqlite") {
      // @effect/sql-sqlite-node keeps one connection per client: pragmas set
      // here hold for every statement of this store.
      yield* sql.unsafe(`PRAGMA busy_timeout = ${Math.max(0, Math.round(options.sqliteBusyTimeoutMillis ?? 30_000))}`)
        .pipe(Effect.mapError(failure("open")))
      yield* sql.unsafe(`PRAGMA synchronous = ${options.sqliteSynchronous ?? "FULL"}`).pipe(
        Effect.mapError(failure("open"))
      )
    }
    yield* Effect.mapError(migrate(names), failure("migrate"))
    if (dialect === "pg") {
      const settings = yield* sql<{ name: string; setting: string }>`
        SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit')`.pipe(
        Effect.mapError(failure("open"))
      )
      for (const { name, setting } of settings) {
        if (setting === "off") {
          yield* Effect.logWarning(
            `${path}: the server runs with ${name} = off: a save acknowledged just before the server crashes can be lost`
          )
        }
      }
    }

    // -- rows to sessions --------------------------------------------------------

    /** The session in a row; a row that is not one (edited by hand) is a problem. */
    const decodeRow = (row: Row, position: number) =>
      Either.mapLeft(InterviewSession.decodeLine(row.body), (problem): SessionStorageError.LineProblem => ({
        line: position,
        offset: Number(row.seq),
        problem: `row ${JSON.stringify(row.id)}: ${problem}`
      }))

    /**
     * Keeps the sessions of a page of rows: a row that is not a session is
     * skipped with a warning, or, with `strict`, fails with `CorruptStore`.
     */
    const sessionsOf = (rows: ReadonlyArray<Row>, firstPosition: number) =>
      Effect.gen(function*() {
        const sessions: Array<InterviewSession.InterviewSession> = []
        for (let i = 0; i < rows.length; i++) {
          const row = rows[i] as Row
          const decoded = decodeRow(row, firstPosition + i)
          if (Either.isRight(decoded)) {
            sessions.push(decoded.right)
          } else if (strict) {
            return yield* Effect.fail(new SessionStorageError.CorruptStore({ path, problems: [decoded.left] }))
          } else {
            yield* Effect.logWarning(`${path}: ${decoded.left.problem}; the row is not a session and is ignored`)
          }
        }
        return sessions
      })

    // -- operations --------------------------------------------------------------

    /**
     * One statement: insert, or replace the row with the same id and move it
     * to the end of the save order. PostgreSQL takes the next value of a
     * sequence after the row lock (a waiting save of the same id gets a
     * higher one); SQLite runs one writer at a time, so one more than the
     * largest position is never taken twice.
     */
    const upsert = (id: string, text: string, session: InterviewSession.InterviewSession) => {
      const columns = sql`${id}, ${text}, ${session.profile}, ${session.stage}, ${session.updated_at}`
      return dialect === "pg"
        ? sql`INSERT INTO ${table} (save_seq, id, body, profile, stage, updated_at)
VALUES (nextval(${sql.literal(`'${names.sequence}'`)}), ${columns})
ON CONFLICT (id) DO UPDATE SET save_seq = nextval(${sql.literal(`'${names.sequence}'`)}),
  body = EXCLUDED.body, profile = EXCLUDED.profile, stage = EXCLUDED.stage,
  updated_at = EXCLUDED.updated_at, saved_at = now()`
        : sql`INSERT INTO ${table} (save_seq, id, body, profile, stage, updated_at)
VALUES ((SELECT coalesce(max(save_seq), 0) + 1 FROM ${table}), ${columns})
ON CONFLICT (id) DO UPDATE SET save_seq = excluded.save_seq,
  body = excluded.body, profile = excluded.profile, stage = excluded.stage,
  updated_at = excluded.updated_at, saved_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`
    }

    const save = (session: InterviewSession.InterviewSession) =>
      Effect.gen(function*() {
        const { id, text } = yield* InterviewSession.encodeForStore(session, limits)
        yield* Effect.mapError(upsert(id, text, session), failure("save"))
      })

    const get = (id: string) =>
      Effect.gen(function*() {
        const rows = yield* Effect.mapError(
          sql<Row>`SELECT save_seq AS seq, id, body FROM ${table} WHERE id = ${id}`,
          failure("get")
        )
        const row = rows[0]
        if (row === undefined) return yield* Effect.fail(new SessionStorageError.SessionNotFound({ path, id }))
        const decoded = decodeRow(row, 1)
        return Either.isRight(decoded)
          ? decoded.right
          : yield* Effect.fail(new SessionStorageError.CorruptStore({ path, problems: [decoded.left] }))
      })

    const remove = (id: string) =>
      Effect.gen(function*() {
        const removed = yield* Effect.mapError(
          sql<{ id: string }>`DELETE FROM ${table} WHERE id = ${id} RETURNING id`,
          failure("remove")
        )
        if (removed.length === 0) return yield* Effect.fail(new SessionStorageError.SessionNotFound({ path, id }))
      })

    /** One statement: a snapshot of the whole table. */
    const list = () =>
      Effect.flatMap(
        Effect.mapError(sql<Row>`SELECT save_seq AS seq, id, body FROM ${table} ORDER BY save_seq`, failure("list")),
        (rows) => sessionsOf(rows, 1)
      )

    /**
     * PostgreSQL: one statement read through a cursor, so one snapshot.
     * SQLite (whose driver has no cursor): pages in save order, each after
     * the last position seen; no snapshot across pages (see the README).
     */
    const rows = (): Stream.Stream<Row, SqlError> => {
      if (dialect === "pg") {
        return sql<Row>`SELECT save_seq AS seq, id, body FROM ${table} ORDER BY save_seq`.stream
      }
      return Stream.paginateChunkEffect(0 as number | string, (after) =>
        Effect.map(
          sql<Row>`SELECT save_seq AS seq, id, body FROM ${table} WHERE save_seq > ${after}
ORDER BY save_seq LIMIT ${pageSize}`,
          (page) => {
            const last = page[page.length - 1]
            return [
              Chunk.unsafeFromArray(page),
              page.length < pageSize || last === undefined ? Option.none() : Option.some(last.seq)
            ] as const
          }
        ))
    }

    const stream = (): Stream.Stream<
      InterviewSession.InterviewSession,
      SessionStorageError.CorruptStore | SessionStorageError.StorageFailure
    > => {
      let position = 0
      return rows().pipe(
        Stream.mapError(failure("stream")),
        Stream.mapChunksEffect((chunk) => {
          const first = position + 1
          position += chunk.length
          return Effect.map(sessionsOf(Chunk.toReadonlyArray(chunk), first), Chunk.unsafeFromArray)
        })
      )
    }

    const count = Effect.mapError(
      sql<{ rows: number | string }>`SELECT count(*) AS rows FROM ${table}`,
      failure("compact")
    ).pipe(Effect.map((result) => Number(result[0]?.rows ?? 0)))

    const compact = (): Effect.Effect<CompactionReport, SessionStorageError.StorageFailure> =>
      Effect.map(count, (rows) => ({
        rewritten: false,
        linesBefore: rows,
        linesAfter: rows,
        rejected: 0,
        note: "a database store is always compact: a save replaces its row in place, a removal deletes it"
      }))

    /** Reads every row through `stream`'s path and reports those that are not sessions. */
    const check = (): Effect.Effect<IntegrityReport, SessionStorageError.StorageFailure> =>
      Effect.gen(function*() {
        const report = {
          rows: 0,
          sessions: 0,
          bytes: 0,
          corrupt: [] as Array<SessionStorageError.LineProblem>,
          corruptCount: 0
        }
        const encoder = new TextEncoder()
        yield* rows().pipe(
          Stream.runForEach((row) =>
            Effect.sync(() => {
              report.rows++
              report.bytes += encoder.encode(row.body).length
              const decoded = decodeRow(row, report.rows)
              if (Either.isRight(decoded)) {
                report.sessions++
              } else {
                report.corruptCount++
                if (report.corrupt.length < MAX_PROBLEMS_KEPT) report.corrupt.push(decoded.left)
              }
            })
          ),
          Effect.mapError(failure("check"))
        )
        return {
          path,
          exists: true,
          bytes: report.bytes,
          lines: report.rows,
          sessions: report.sessions,
          records: report.rows,
          superseded: 0,
          removals: 0,
          blank: 0,
          corrupt: report.corrupt,
          torn: Option.none(),
          duplicates: [],
          rejected: 0,
          ok: report.corruptCount === 0
        }
      })

    return { path, save, get, list, stream, remove, compact, check } as const
  })
