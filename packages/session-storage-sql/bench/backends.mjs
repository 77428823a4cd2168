// Measures SessionStorage's save, get and list on each backend (the JSON
// Lines file, SQLite, PostgreSQL) holding 10,000 sessions, and saves per
// second with 12 concurrent writer processes on PostgreSQL; writes the table
// to docs/BENCHMARKS-BACKENDS.md. Run after `pnpm build`:
//
//   INTENT_TEST_PG_URL=postgres://... node packages/session-storage-sql/bench/backends.mjs [--quick]
//
// Method: each store is filled with N sessions of about 1 KiB (N = 10,000,
// 1,000 with --quick) by the fastest honest path (the file written directly;
// SQLite through a store with synchronous = OFF; PostgreSQL through the store
// with 16 saves in flight), then, through a fresh store with the default
// durability (file: fsync per save; SQLite: WAL, synchronous = FULL;
// PostgreSQL: the server's synchronous_commit), one process times 200 saves
// of existing ids picked at random, 1,000 gets and 5 lists, one after
// another. Then 12 processes (and, for the ratio, 1) each save 100 sessions
// on PostgreSQL as fast as they can, started together. Timings are wall
// clock on a shared machine: compare the rows of one run, not runs with each
// other. Without PostgreSQL the PostgreSQL rows say why they are missing.
import { NodeContext } from "@effect/platform-node"
import { SessionStorage } from "@intent/session-storage"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Pg from "../dist/Pg.js"
import * as Sqlite from "../dist/Sqlite.js"

const quick = process.argv.includes("--quick")
const here = dirname(fileURLToPath(import.meta.url))
const fixture = readFileSync(join(here, "../../session-storage/test/fixtures/interview-sessions.jsonl"), "utf8")
  .split("\n")[0]
const base = { ...JSON.parse(fixture), answers: [], gaps: [], conflicts: [] }
const sessionOf = (id, note) => ({ ...base, id, raw_notes: note.padEnd(700, ".") })
const size = quick ? 1000 : 10000
const SAVES = 200
const GETS = 1000
const LISTS = 5
const WRITERS = 12
const WRITER_SAVES = 100
const pgUrl = process.env.INTENT_TEST_PG_URL ?? ""

const micros = (started) => Number(process.hrtime.bigint() - started) / 1000
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const randomId = () => `s-${Math.floor(Math.random() * size)}`

/** Times save, get and list on the store `layer` builds. */
const measure = (layer) =>
  Effect.gen(function*() {
    const store = yield* SessionStorage.SessionStorage
    yield* store.list() // warm: the file store indexes the file at first use
    const save = []
    for (let i = 0; i < SAVES; i++) {
      const started = process.hrtime.bigint()
      yield* store.save(sessionOf(randomId(), `save ${i}`))
      save.push(micros(started))
    }
    const get = []
    for (let i = 0; i < GETS; i++) {
      const started = process.hrtime.bigint()
      yield* store.get(randomId())
      get.push(micros(started))
    }
    const list = []
    for (let i = 0; i < LISTS; i++) {
      const started = process.hrtime.bigint()
      const all = yield* store.list()
      list.push(micros(started))
      if (all.length !== size) throw new Error(`list returned ${all.length} sessions, expected ${size}`)
    }
    return { save: median(save), get: median(get), list: median(list) }
  }).pipe(Effect.provide(layer))

const fillThrough = (layer, concurrency) =>
  Effect.gen(function*() {
    const store = yield* SessionStorage.SessionStorage
    yield* Effect.forEach(
      Array.from({ length: size }, (_, i) => i),
      (i) => store.save(sessionOf(`s-${i}`, "initial")),
      { concurrency, discard: true }
    )
  }).pipe(Effect.provide(layer))

const dropTable = (table) =>
  Effect.gen(function*() {
    const { PgClient } = yield* Effect.promise(() => import("@effect/sql-pg"))
    const { Reactivity } = yield* Effect.promise(() => import("@effect/experimental"))
    const { Redacted } = yield* Effect.promise(() => import("effect"))
    yield* Effect.scoped(
      Effect.flatMap(
        PgClient.make({ url: Redacted.make(pgUrl) }),
        (sql) =>
          sql.unsafe(
            `DROP TABLE IF EXISTS ${table}; DROP SEQUENCE IF EXISTS ${table}_save_seq; DROP TABLE IF EXISTS ${table}_migrations`
          )
      )
    ).pipe(Effect.provide(Reactivity.layer))
  })

/** Saves `count` sessions, waiting for "go" on stdin; prints start and end times (ms). */
const writerScript = `
  import { Effect } from "effect"
  import { SessionStorage } from "@intent/session-storage"
  import * as Pg from ${JSON.stringify(fileURLToPath(new URL("../dist/Pg.js", import.meta.url)))}
  const [url, table, tag, count] = process.argv.slice(1)
  const base = ${JSON.stringify(sessionOf("template", "writer"))}
  Effect.gen(function*() {
    const store = yield* SessionStorage.SessionStorage
    yield* store.get("warm").pipe(Effect.ignore)
    console.log("ready")
    yield* Effect.async((resume) => { process.stdin.once("data", () => resume(Effect.void)) })
    const started = Date.now()
    for (let i = 0; i < Number(count); i++) yield* store.save({ ...base, id: tag + "-" + i })
    console.log("times " + started + " " + Date.now())
  }).pipe(Effect.provide(Pg.layer({ url, table, maxConnections: 1 })), Effect.runPromise)
    .then(() => process.exit(0), (e) => { console.error(String(e)); process.exit(1) })
`

/** `writers` processes save together; the saves per second of all of them. */
const concurrentSaves = async (writers, table) => {
  const children = Array.from({ length: writers }, (_, w) => {
    const child = spawn(
      process.execPath,
      ["--input-type=module", "-e", writerScript, "--", pgUrl, table, `w${w}`, String(WRITER_SAVES)],
      { cwd: join(here, ".."), stdio: ["pipe", "pipe", "inherit"] }
    )
    let out = ""
    const ready = new Promise((resolve) =>
      child.stdout.on("data", (data) => {
        out += data.toString()
        if (out.includes("ready")) resolve()
      })
    )
    const done = new Promise((resolve, reject) =>
      child.on("exit", (code) => code === 0 ? resolve(out) : reject(new Error(`writer exited with ${code}`)))
    )
    return { child, ready, done }
  })
  await Promise.all(children.map((c) => c.ready))
  for (const { child } of children) child.stdin.end("go\n")
  const outputs = await Promise.all(children.map((c) => c.done))
  const spans = outputs.map((out) => out.match(/times (\d+) (\d+)/).slice(1).map(Number))
  const elapsed = Math.max(...spans.map(([, end]) => end)) - Math.min(...spans.map(([start]) => start))
  return (writers * WRITER_SAVES) / (elapsed / 1000)
}

const rows = []
let concurrency = undefined
let pgNote = undefined
let pgSettings = ""

const program = Effect.gen(function*() {
  const dir = mkdtempSync(join(tmpdir(), "bench-backends-"))
  try {
    // the file
    const file = join(dir, "sessions.jsonl")
    writeFileSync(
      file,
      Array.from({ length: size }, (_, i) => JSON.stringify(sessionOf(`s-${i}`, "initial"))).join("\n") + "\n"
    )
    rows.push({
      backend: "file (JSON Lines, fsync per save)",
      ...(yield* measure(SessionStorage.layer({ path: file, compactThreshold: false })).pipe(
        Effect.provide(NodeContext.layer)
      ))
    })

    // SQLite
    const db = join(dir, "sessions.db")
    yield* fillThrough(Sqlite.layer({ filename: db, sqliteSynchronous: "OFF" }), 1)
    rows.push({ backend: "SQLite (WAL, synchronous = FULL)", ...(yield* measure(Sqlite.layer({ filename: db }))) })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }

  // PostgreSQL
  if (pgUrl === "") {
    pgNote = "PostgreSQL was not measured: INTENT_TEST_PG_URL is not set."
    return
  }
  const reached = yield* Effect.either(Pg.ping(pgUrl))
  if (reached._tag === "Left") {
    pgNote = `PostgreSQL was not measured: ${reached.left.message}`
    return
  }
  const table = `bench_${process.pid}`
  const writersTable = `bench_writers_${process.pid}`
  try {
    yield* fillThrough(Pg.layer({ url: pgUrl, table, maxConnections: 16 }), 16)
    const settings = yield* Effect.promise(async () => {
      const { default: pg } = await import("pg")
      const client = new pg.Client({ connectionString: pgUrl })
      await client.connect()
      const result = await client.query(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'server_version')"
      )
      await client.end()
      return result.rows
    }).pipe(Effect.orElseSucceed(() => []))
    pgSettings = settings.map((row) => `${row.name} = ${row.setting}`).join(", ")
    rows.push({
      backend: "PostgreSQL (synchronous_commit as the server has it)",
      ...(yield* measure(Pg.layer({ url: pgUrl, table })))
    })
    const one = yield* Effect.promise(() => concurrentSaves(1, writersTable))
    yield* dropTable(writersTable)
    const twelve = yield* Effect.promise(() => concurrentSaves(WRITERS, writersTable))
    concurrency = { one, twelve }
  } finally {
    yield* dropTable(table)
    yield* dropTable(writersTable)
  }
})

await Effect.runPromise(program)

const ms = (us) => (us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(0)} µs`)
const out = [
  "# SessionStorage backends: save, get, list",
  "",
  `Generated by \`node packages/session-storage-sql/bench/backends.mjs${quick ? " --quick" : ""}\` on ${
    new Date().toISOString().slice(0, 10)
  } (${cpus().length} CPUs, shared; Node ${process.version}${
    pgSettings === "" ? "" : `; PostgreSQL ${pgSettings}`
  }). Do not edit by hand: run it again.`,
  "",
  `Each store holds ${
    size.toLocaleString("en")
  } sessions of about 1 KiB. Medians of ${SAVES} saves (existing ids at random), ${GETS} gets and ${LISTS} lists, one after another in one process, with each backend's default durability. Wall clock on a shared machine: compare rows of one run.`,
  "",
  "| backend | save | get | list (all sessions) |",
  "| --- | ---: | ---: | ---: |",
  ...rows.map((row) => `| ${row.backend} | ${ms(row.save)} | ${ms(row.get)} | ${ms(row.list)} |`),
  "",
  ...(pgNote === undefined ? [] : [pgNote, ""]),
  ...(concurrency === undefined ? [] : [
    `## Concurrent writers on PostgreSQL`,
    "",
    `Processes started together, each saving ${WRITER_SAVES} new sessions one after another over its own connection; saves per second of all of them together (first start to last end).`,
    "",
    "| writers | saves per second | ratio to 1 writer |",
    "| ---: | ---: | ---: |",
    `| 1 | ${concurrency.one.toFixed(0)} | 1.0 |`,
    `| ${WRITERS} | ${concurrency.twelve.toFixed(0)} | ${(concurrency.twelve / concurrency.one).toFixed(1)} |`,
    ""
  ])
].join("\n")
const target = join(here, "../../../docs/BENCHMARKS-BACKENDS.md")
mkdirSync(dirname(target), { recursive: true })
writeFileSync(target, out)
console.log(out)
