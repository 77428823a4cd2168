/**
 * The session store in an SQLite database file, through
 * `@effect/sql-sqlite-node` (better-sqlite3, a native module).
 *
 * @since 0.1.0
 */
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type { SessionStorage } from "@intent/session-storage"
import type { StorageFailure } from "@intent/session-storage/SessionStorageError"
import * as Layer from "effect/Layer"
import { layer as sqlLayer, type SqlSessionStorageOptions } from "./SqlSessionStorage.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface SqliteOptions extends SqlSessionStorageOptions {
  /** The database file (created if missing). */
  readonly filename: string
}

/**
 * The store in the SQLite file `filename`, in WAL mode, with
 * `synchronous = FULL` unless `sqliteSynchronous` says otherwise.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SqliteOptions): Layer.Layer<SessionStorage.SessionStorage, StorageFailure> =>
  sqlLayer({ description: `sqlite:${options.filename}#${options.table ?? "intent_sessions"}`, ...options }).pipe(
    Layer.provide(SqliteClient.layer({ filename: options.filename }).pipe(Layer.orDie))
  )
