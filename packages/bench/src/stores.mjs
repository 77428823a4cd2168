// The SessionStorage backends the harness measures, described by plain data
// (so that a child process can be told which one to open):
//
//   { kind: "file", path }                       the JSON Lines file (NodeContext)
//   { kind: "sqlite", filename, synchronous? }   SQLite through @effect/sql-sqlite-node
//   { kind: "pg", url, table, maxConnections? }  PostgreSQL through @effect/sql-pg
//
// and the few PostgreSQL helpers the harness needs around them.
import { Reactivity } from "@effect/experimental"
import { NodeContext } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { SessionStorage } from "@intent/session-storage"
import * as Pg from "@intent/session-storage-sql/Pg"
import * as Sqlite from "@intent/session-storage-sql/Sqlite"
import { Effect, Exit, Layer, Redacted, Scope } from "effect"

/** The `SessionStorage` layer of a backend, each with its default durability unless the spec says otherwise. */
export const storeLayer = (spec) => {
  switch (spec.kind) {
    case "file":
      return SessionStorage.layer({ path: spec.path, compactThreshold: false, ...spec.options }).pipe(
        Layer.provide(NodeContext.layer)
      )
    case "sqlite":
      return Sqlite.layer({
        filename: spec.filename,
        ...(spec.synchronous === undefined ? {} : { sqliteSynchronous: spec.synchronous })
      })
    case "pg":
      return Pg.layer({
        url: spec.url,
        table: spec.table,
        ...(spec.maxConnections === undefined ? {} : { maxConnections: spec.maxConnections })
      })
  }
  throw new Error(`unknown backend ${JSON.stringify(spec)}`)
}

/** Builds a backend's layer into `scope` and returns the store (closed with the scope). */
export const openStore = async (spec, scope) => {
  const context = await Effect.runPromise(Layer.buildWithScope(storeLayer(spec), scope))
  return context.unsafeMap.get(SessionStorage.SessionStorage.key)
}

/** Opens a backend's store, runs `f(store)` (async) and closes the store again, also on failure. */
export const withStore = async (spec, f) => {
  const scope = await Effect.runPromise(Scope.make())
  try {
    return await f(await openStore(spec, scope))
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

/** Runs `f(sql)` with a short-lived PostgreSQL client on `url`. */
const withPg = (url, f) =>
  Effect.runPromise(
    Effect.scoped(Effect.flatMap(PgClient.make({ url: Redacted.make(url), connectTimeout: "3 seconds" }), f)).pipe(
      Effect.provide(Reactivity.layer)
    )
  )

/**
 * Whether the server at `url` answers: `undefined` when it does, else why not
 * (the URL's password is never part of the message).
 */
export const pgUnreachable = async (url) => {
  const reached = await Effect.runPromise(Effect.either(Pg.ping(url)))
  return reached._tag === "Right" ? undefined : reached.left.message
}

/** The server's version and durability settings, as `name = value` pairs. */
export const pgSettings = (url) =>
  withPg(url, (sql) =>
    sql.unsafe(
      "SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'fsync', 'synchronous_commit') ORDER BY name"
    )).then((rows) => rows.map((row) => `${row.name} = ${row.setting}`).join(", "))

/** Drops what a store on `table` created: the table (with its index), its sequence and its migrations table. */
export const pgDropTable = (url, table) =>
  withPg(url, (sql) =>
    sql.unsafe(
      `DROP TABLE IF EXISTS ${table}; DROP SEQUENCE IF EXISTS ${table}_save_seq; DROP TABLE IF EXISTS ${table}_migrations`
    ))
