/**
 * The three backends of the `SessionStorage` contract, each able to make a
 * fresh, isolated store (a temp file, a temp SQLite file, a table of its own
 * in the test PostgreSQL database) and any number of clients on it.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { SessionStorage } from "@intent/session-storage"
import type { StorageFailure } from "@intent/session-storage/SessionStorageError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { readFileSync } from "node:fs"
import pg from "pg"
import * as Pg from "../src/Pg.js"
import * as Sqlite from "../src/Sqlite.js"

/** What a contract test may set on a store. */
export interface Limits {
  readonly maxBytes?: number
  readonly maxIdLength?: number
  readonly strict?: boolean
}

/** One isolated store; `client` makes a new client on it (as another process would). */
export interface Place {
  readonly client: (limits?: Limits) => Layer.Layer<SessionStorage.SessionStorage, StorageFailure>
  /** The stored text of every live session by id, read beside the store (the file's lines, the body column). */
  readonly stored: Effect.Effect<Map<string, string>>
  /** Databases only: replaces the stored text of `id` beside the store, as a hand edit would. */
  readonly overwrite?: (id: string, text: string) => Effect.Effect<void>
  /**
   * Databases only: inserts rows `s-1` … `s-<count>` in one statement, the
   * text of each being `template` with its `"id":"ID"` set (the store's
   * table must exist: open a client first).
   */
  readonly fill?: (count: number, template: string) => Effect.Effect<void>
}

export type Kind = "file" | "sqlite" | "pg"

export interface Backend {
  readonly kind: Kind
  readonly place: Effect.Effect<Place, never, Scope.Scope>
}

const tempDirectory = Effect.orDie(Effect.flatMap(
  FileSystem.FileSystem,
  (fs) => fs.makeTempDirectoryScoped({ prefix: "session-storage-sql-test-" })
)).pipe(Effect.provide(NodeContext.layer))

export const fileBackend: Backend = {
  kind: "file",
  place: Effect.map(tempDirectory, (dir) => ({
    stored: Effect.sync(() => {
      const byId = new Map<string, string>()
      for (const line of readFileSync(`${dir}/sessions.jsonl`, "utf8").split("\n")) {
        if (line.length === 0) continue
        const parsed = JSON.parse(line) as { id?: string; $deleted?: string }
        if (parsed.id !== undefined) byId.set(parsed.id, line)
        if (parsed.$deleted !== undefined) byId.delete(parsed.$deleted)
      }
      return byId
    }),
    client: (limits = {}) =>
      SessionStorage.layer({
        path: `${dir}/sessions.jsonl`,
        ...(limits.maxBytes === undefined ? {} : { maxLineBytes: limits.maxBytes }),
        ...(limits.maxIdLength === undefined ? {} : { maxIdLength: limits.maxIdLength }),
        ...(limits.strict === undefined ? {} : { strict: limits.strict })
      }).pipe(Layer.provide(NodeContext.layer))
  }))
}

export const sqliteBackend: Backend = {
  kind: "sqlite",
  place: Effect.map(tempDirectory, (dir) => ({
    stored: Effect.gen(function*() {
      const sql = yield* SqliteClient.make({ filename: `${dir}/sessions.db` })
      const rows = yield* sql<{ id: string; body: string }>`SELECT id, body FROM intent_sessions`
      return new Map(rows.map((row) => [row.id, row.body]))
    }).pipe(Effect.scoped, Effect.provide(Reactivity.layer), Effect.orDie),
    overwrite: (id, text) =>
      Effect.gen(function*() {
        const sql = yield* SqliteClient.make({ filename: `${dir}/sessions.db` })
        yield* sql`UPDATE intent_sessions SET body = ${text} WHERE id = ${id}`
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer), Effect.orDie),
    fill: (count, template) =>
      Effect.gen(function*() {
        const sql = yield* SqliteClient.make({ filename: `${dir}/sessions.db` })
        yield* sql`INSERT INTO intent_sessions (id, save_seq, body, profile, stage, updated_at)
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ${count})
SELECT 's-' || n, n, replace(${template}, '"id":"ID"', '"id":"s-' || n || '"'), 'api', 'discovery', '' FROM c`
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer), Effect.orDie),
    client: (limits = {}) => Sqlite.layer({ filename: `${dir}/sessions.db`, pageSize: 2, ...limits })
  }))
}

/** The test server's URL: `INTENT_TEST_PG_URL` (`.ci/run` sets it). */
export const pgUrl = process.env.INTENT_TEST_PG_URL ?? ""

/**
 * Whether the test PostgreSQL server answers; the reason when it does not.
 * Under CI (`CI=true`), or when `INTENT_TEST_PG_URL` names a server, the
 * tests that need it fail instead of skipping.
 */
export const probePg = async (): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }> => {
  if (pgUrl === "") {
    return { ok: false, reason: "INTENT_TEST_PG_URL is not set (.ci/run sets it after starting PostgreSQL)" }
  }
  const reached = await Effect.runPromise(Effect.either(Pg.ping(pgUrl)))
  return reached._tag === "Right"
    ? { ok: true }
    : { ok: false, reason: `no PostgreSQL server answers at INTENT_TEST_PG_URL: ${reached.left.message}` }
}

export const isCI = process.env.CI === "true" || pgUrl !== ""

let tables = 0

/** Runs plain SQL on the test server (setup and cleanup, outside the code under test). */
export const pgQuery = (text: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: pgUrl })
    await client.connect()
    try {
      return (await client.query(text)).rows as Array<Record<string, unknown>>
    } finally {
      await client.end()
    }
  })

/** Drops a table made by the store, with its sequence and migrations table. */
export const dropPgTable = (table: string) =>
  pgQuery(
    `DROP TABLE IF EXISTS ${table}; DROP SEQUENCE IF EXISTS ${table}_save_seq; DROP TABLE IF EXISTS ${table}_migrations`
  )

/** A table name no other test (nor a parallel run) uses. */
export const uniqueTable = (prefix: string) =>
  `${prefix}_${process.pid}_${++tables}_${Math.floor(Math.random() * 1e9).toString(36)}`

export const pgBackend: Backend = {
  kind: "pg",
  place: Effect.map(
    Effect.acquireRelease(Effect.sync(() => uniqueTable("contract")), (table) => dropPgTable(table)),
    (table) => ({
      stored: Effect.map(
        pgQuery(`SELECT id, body FROM ${table}`),
        (rows) => new Map(rows.map((row) => [String(row.id), String(row.body)]))
      ),
      overwrite: (id, text) =>
        Effect.asVoid(pgQuery(`UPDATE ${table} SET body = '${text.replaceAll("'", "''")}' WHERE id = '${id}'`)),
      fill: (count, template) =>
        Effect.asVoid(pgQuery(
          `INSERT INTO ${table} (id, save_seq, body, profile, stage, updated_at)
SELECT 's-' || n, n, replace('${template.replaceAll("'", "''")}', '"id":"ID"', '"id":"s-' || n || '"'),
  'api', 'discovery', '' FROM generate_series(1, ${count}) n;
SELECT setval('${table}_save_seq', ${count})`
        )),
      client: (limits = {}) => Pg.layer({ url: pgUrl, table, maxConnections: 4, ...limits })
    })
  )
}
