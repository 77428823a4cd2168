/**
 * `SqlSessionStorage`: the `SessionStorage` service of
 * `@intent/session-storage` over `@effect/sql`'s `SqlClient`, on PostgreSQL
 * or SQLite. One row per session holding its exact JSON text; a save is one
 * upsert statement.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { SessionStorage } from "@intent/session-storage"
import type { StorageFailure } from "@intent/session-storage/SessionStorageError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internal from "./internal/sqlSessionStorage.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface SqlSessionStorageOptions {
  /**
   * The sessions table: lowercase letters, digits and `_`. Its sequence,
   * index and migrations table take it as a prefix. Default
   * `intent_sessions`.
   */
  readonly table?: string
  /** What the store reports as its `path` (in errors too). Default `<dialect>:<table>`. */
  readonly description?: string
  /** Most bytes of one session's JSON text. Default 1 MiB, as the file's line limit. */
  readonly maxBytes?: number
  /** Longest id, at most 256 (the schema's limit). Default 256. */
  readonly maxIdLength?: number
  /** Fail `list` and `stream` with `CorruptStore` at a row that is not a session, instead of skipping it. */
  readonly strict?: boolean
  /** Rows per page of `stream` on SQLite. Default 256. */
  readonly pageSize?: number
  /**
   * SQLite `synchronous` for this store's connection. Default `"FULL"`: a save is
   * durable when it returns. `"NORMAL"` and `"OFF"` trade that away (bulk loads).
   */
  readonly sqliteSynchronous?: "EXTRA" | "FULL" | "NORMAL" | "OFF"
  /** SQLite `busy_timeout`: how long a save waits for another writer. Default 30 seconds. */
  readonly sqliteBusyTimeoutMillis?: number
}

/**
 * The store over the `SqlClient` of the environment: runs the migrations,
 * then provides the same `SessionStorage` service as the file store, so a
 * program changes only the layer it provides.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: SqlSessionStorageOptions = {}
): Layer.Layer<SessionStorage.SessionStorage, StorageFailure, SqlClient.SqlClient> =>
  Layer.effect(SessionStorage.SessionStorage, Effect.map(internal.make(options), SessionStorage.SessionStorage.make))
