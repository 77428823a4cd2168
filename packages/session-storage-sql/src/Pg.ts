/**
 * The session store on PostgreSQL, through `@effect/sql-pg`.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import type { SessionStorage } from "@intent/session-storage"
import { StorageFailure } from "@intent/session-storage/SessionStorageError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { layer as sqlLayer, type SqlSessionStorageOptions } from "./SqlSessionStorage.js"

/**
 * A URL without its password, to name the store in messages.
 *
 * @since 0.1.0
 * @category utils
 */
export const describeUrl = (url: string, table = "intent_sessions"): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return `${parsed.toString()}#${table}`
  } catch {
    return `postgres#${table}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PgOptions extends SqlSessionStorageOptions {
  /** `postgres://user:password@host:port/database` */
  readonly url: string
  /** Connections in the pool. Default 10 (the driver's). */
  readonly maxConnections?: number
}

/**
 * The store on the PostgreSQL database at `url`, with its own connection
 * pool (closed with the layer).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: PgOptions): Layer.Layer<SessionStorage.SessionStorage, StorageFailure> => {
  const description = describeUrl(options.url, options.table)
  const client = PgClient.layer({
    url: Redacted.make(options.url),
    ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections })
  }).pipe(
    Layer.catchAll((cause) => Layer.fail(new StorageFailure({ operation: "connect", path: description, cause })))
  )
  return sqlLayer({ description, ...options }).pipe(Layer.provide(client))
}

/**
 * Connects to the server at `url` and runs `SELECT 1`: whether a store
 * could open there (tests use it to tell a missing server from a failure).
 *
 * @since 0.1.0
 * @category utils
 */
export const ping = (url: string): Effect.Effect<void, StorageFailure> =>
  Effect.scoped(
    Effect.gen(function*() {
      const sql = yield* PgClient.make({ url: Redacted.make(url), connectTimeout: "3 seconds" })
      yield* sql`SELECT 1`
    }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.mapError((cause) => new StorageFailure({ operation: "connect", path: describeUrl(url), cause }))
    )
  )
