/**
 * The schema of the sessions table, as `@effect/sql` migrations, and the
 * step that lets several processes start at once on a fresh database.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"

/**
 * The names derived from the table name (checked against `TABLE_NAME`
 * before they reach any statement, so they can be spliced in as literals).
 */
export interface Names {
  readonly table: string
  readonly sequence: string
  readonly orderIndex: string
  readonly migrations: string
}

export const TABLE_NAME = /^[a-z_][a-z0-9_]{0,40}$/

export const namesOf = (table: string): Names => ({
  table,
  sequence: `${table}_save_seq`,
  orderIndex: `${table}_by_save_seq`,
  migrations: `${table}_migrations`
})

/**
 * Migration 1: one row per session. `body` is the session's JSON text,
 * exactly as `encodeLine` wrote it (text, not jsonb: jsonb would reorder
 * keys and drop duplicates, and the read-back must be byte-identical);
 * `save_seq` orders the rows by last save; `profile`, `stage` and
 * `updated_at` are copies for queries by hand.
 */
const createSessions = (names: Names) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const table = sql(names.table)
    yield* sql.onDialectOrElse({
      pg: () =>
        Effect.zipRight(
          sql`CREATE SEQUENCE ${sql(names.sequence)} AS bigint`,
          sql`CREATE TABLE ${table} (
  id text PRIMARY KEY,
  save_seq bigint NOT NULL,
  body text NOT NULL,
  profile text NOT NULL,
  stage text NOT NULL,
  updated_at text NOT NULL,
  saved_at timestamptz NOT NULL DEFAULT now()
)`
        ),
      orElse: () =>
        sql`CREATE TABLE ${table} (
  id TEXT PRIMARY KEY NOT NULL,
  save_seq INTEGER NOT NULL,
  body TEXT NOT NULL,
  profile TEXT NOT NULL,
  stage TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  saved_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`
    })
    yield* sql`CREATE UNIQUE INDEX ${sql(names.orderIndex)} ON ${table} (save_seq)`
  })

/**
 * Runs the migrations. The migrator serialises concurrent runs by locking
 * its own table (PostgreSQL) or by SQLite's single writer, but on a fresh
 * PostgreSQL database two processes can both find that table missing and
 * both create it; creating it first under an advisory lock closes that gap.
 */
export const migrate = (names: Names) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.onDialectOrElse({
      pg: () =>
        sql.withTransaction(Effect.zipRight(
          sql`SELECT pg_advisory_xact_lock(hashtext(${names.migrations}))`,
          sql`CREATE TABLE IF NOT EXISTS ${sql(names.migrations)} (
  migration_id integer primary key,
  created_at timestamp with time zone not null default now(),
  name text not null
)`
        )),
      orElse: () => Effect.void
    })
    return yield* Migrator.make({})({
      loader: Migrator.fromRecord({ "1_create_sessions": createSessions(names) }),
      table: names.migrations
    })
  })
