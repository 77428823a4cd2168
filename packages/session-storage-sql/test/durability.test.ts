/**
 * The durability settings the README promises: SQLite in WAL mode with
 * synchronous = FULL on the store's connection (or what the option says),
 * and a warning when PostgreSQL acknowledges commits before they are on disk.
 */
import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { SessionStorage } from "@intent/session-storage"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Pg from "../src/Pg.js"
import * as SqlSessionStorage from "../src/SqlSessionStorage.js"
import { dropPgTable, isCI, pgUrl, probePg, uniqueTable } from "./backends.js"

const pragmasUnder = (options: SqlSessionStorage.SqlSessionStorageOptions) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ prefix: "session-storage-sql-durability-" })
    const client = SqliteClient.layer({ filename: `${dir}/s.db` })
    // the store and the test share the client's one connection
    return yield* Effect.gen(function*() {
      yield* SessionStorage.SessionStorage
      const sql = yield* SqlClient.SqlClient
      const [synchronous] = yield* sql<{ synchronous: number }>`PRAGMA synchronous`
      const [journal] = yield* sql<{ journal_mode: string }>`PRAGMA journal_mode`
      const [busy] = yield* sql<{ timeout: number }>`PRAGMA busy_timeout`
      return { synchronous: synchronous?.synchronous, journal: journal?.journal_mode, busy: busy?.timeout }
    }).pipe(Effect.provide(Layer.provideMerge(SqlSessionStorage.layer(options), client)))
  }).pipe(Effect.scoped, Effect.provide(NodeContext.layer))

describe("durability settings", () => {
  it.live("SQLite: WAL, synchronous = FULL (2) and a 30 s busy timeout by default", () =>
    Effect.gen(function*() {
      expect(yield* pragmasUnder({})).toEqual({ synchronous: 2, journal: "wal", busy: 30_000 })
      expect(yield* pragmasUnder({ sqliteSynchronous: "NORMAL", sqliteBusyTimeoutMillis: 500 })).toEqual({
        synchronous: 1,
        journal: "wal",
        busy: 500
      })
    }))
})

const server = await probePg()

describe("durability settings on PostgreSQL", () => {
  if (!server.ok && !isCI) {
    it.skip(`skipped: ${server.reason}`, () => undefined)
    return
  }
  it.live("a connection with synchronous_commit = off is warned about; the default one is not", () =>
    Effect.gen(function*() {
      if (!server.ok) return yield* Effect.dieMessage(server.reason)
      const table = uniqueTable("durability")
      const warnings = (url: string) =>
        Effect.gen(function*() {
          const logged: Array<string> = []
          const logger = Logger.make(({ logLevel, message }) => {
            if (logLevel._tag === "Warning") logged.push(String(message))
          })
          yield* Effect.provide(
            SessionStorage.SessionStorage,
            Pg.layer({ url, table }).pipe(Layer.provide(Logger.replace(Logger.defaultLogger, logger)))
          )
          return logged
        })
      yield* Effect.ensuring(
        Effect.gen(function*() {
          expect(yield* warnings(pgUrl)).toEqual([])
          const off = `${pgUrl}${pgUrl.includes("?") ? "&" : "?"}options=${
            encodeURIComponent("-c synchronous_commit=off")
          }`
          const logged = yield* warnings(off)
          expect(logged.length).toBe(1)
          expect(logged[0]).toContain("synchronous_commit = off")
        }),
        dropPgTable(table)
      )
    }))
})
