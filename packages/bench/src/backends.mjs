// SessionStorage on each backend (the JSON Lines file, SQLite, PostgreSQL):
// save, get and list on a store of `size` sessions; then 1 and `writers`
// processes saving together on PostgreSQL, with every session checked
// afterwards. PostgreSQL comes from INTENT_TEST_PG_URL; without it (or when
// the server does not answer) its rows are not measured and the result says why.
import { Effect } from "effect"
import { join } from "node:path"
import { summarize } from "./measure.mjs"
import { fill, measureReads, runProcesses, sessionOf, timedSaves } from "./sessions.mjs"
import { pgDropTable, pgSettings, pgUnreachable, withStore } from "./stores.mjs"

/** Saves sessions `s-0` … `s-<size - 1>` through a store, `concurrency` at a time. */
const fillThrough = (spec, size, concurrency) =>
  withStore(spec, (store) =>
    Effect.runPromise(
      Effect.forEach(
        Array.from({ length: size }, (_, i) => i),
        (i) => store.save(sessionOf(`s-${i}`, "initial")),
        { concurrency, discard: true }
      )
    ))

/** On a fresh store of `size` sessions: `saves` saves of existing ids at random, then the reads. */
const measureStore = (spec, { size, saves, gets, lists }) =>
  withStore(spec, async (store) => {
    await Effect.runPromise(store.list()) // the file store indexes its file at first use
    const sessions = Array.from(
      { length: saves },
      (_, i) => sessionOf(`s-${Math.floor(Math.random() * size)}`, `save ${i}`)
    )
    const save = summarize(await timedSaves(store, sessions))
    const reads = await measureReads(store, size, { gets, lists })
    return { save, get: reads.get, list: reads.list }
  })

/**
 * Each store is filled with `size` sessions by the fastest honest path (the
 * file written directly; SQLite through a store with synchronous = OFF;
 * PostgreSQL through a store with 16 saves in flight), then measured through
 * a fresh store with the backend's default durability.
 */
export const runBackends = async ({ root, size, saves, gets, lists, writers, writerSaves, pgUrl, log }) => {
  const rows = []
  const measure = { size, saves, gets, lists }

  const file = join(root, "backends", "sessions.jsonl")
  fill(file, size)
  rows.push({
    backend: "file (JSON Lines, fsync per save)",
    ...await measureStore({ kind: "file", path: file }, measure)
  })
  log("backends: file done")

  const filename = join(root, "backends", "sessions.db")
  await fillThrough({ kind: "sqlite", filename, synchronous: "OFF" }, size, 1)
  rows.push({
    backend: "SQLite (WAL, synchronous = FULL)",
    ...await measureStore({ kind: "sqlite", filename }, measure)
  })
  log("backends: SQLite done")

  const pg = { url: pgUrl, notMeasured: undefined, settings: undefined, writers: [] }
  pg.notMeasured = pgUrl === undefined || pgUrl === ""
    ? "INTENT_TEST_PG_URL is not set (`.ci/run` starts a server and sets it)"
    : await pgUnreachable(pgUrl)
  if (pg.notMeasured !== undefined) {
    log(`backends: PostgreSQL not measured: ${pg.notMeasured}`)
    return { rows, pg, ...measure, writerSaves }
  }

  const table = `bench_${process.pid}`
  const writerTables = [1, writers].map((n) => `bench_${process.pid}_writers_${n}`)
  try {
    pg.settings = await pgSettings(pgUrl)
    await fillThrough({ kind: "pg", url: pgUrl, table, maxConnections: 16 }, size, 16)
    rows.push({
      backend: "PostgreSQL (synchronous_commit as the server has it)",
      ...await measureStore({ kind: "pg", url: pgUrl, table }, measure)
    })
    log("backends: PostgreSQL done")
    for (const [n, writerTable] of [[1, writerTables[0]], [writers, writerTables[1]]]) {
      const spec = { kind: "pg", url: pgUrl, table: writerTable, maxConnections: 1 }
      // Creates the table once, so that the writers do not all run the migrations.
      await fillThrough(spec, 0, 1)
      const result = await runProcesses({ root, processes: n, count: writerSaves, spec })
      pg.writers.push(result)
      log(`backends: ${n} PostgreSQL writers done (${result.lost} lost)`)
    }
  } finally {
    for (const t of [table, ...writerTables]) await pgDropTable(pgUrl, t)
  }
  return { rows, pg, ...measure, writerSaves }
}
