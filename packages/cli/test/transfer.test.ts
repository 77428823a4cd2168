/**
 * `intent-sessions import` and `export` between the JSON Lines file and a
 * database (SQLite here, PostgreSQL when the test server answers), run as
 * the built command in child processes.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { describe, expect, it } from "@effect/vitest"
import * as Pg from "@intent/session-storage-sql/Pg"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { runProcess } from "./runProcess.js"

const bin = fileURLToPath(new URL("../dist/bundle/intent-sessions.js", import.meta.url))
const fixture = fileURLToPath(new URL("../../session-storage/test/fixtures/intent-sessions.jsonl", import.meta.url))
/** 310 sessions written by the original tool, without a final newline */
const original = readFileSync(fixture, "utf8")

/** the environment never names a sessions file: every run says which file it means */
const env = { INTENT_SESSIONS_FILE: "" }

const run = (args: ReadonlyArray<string>) => runProcess(process.execPath, [bin, ...args], { env })

/**
 * Import, import again, export, export again: each count, the database's
 * content through the command, and the exported file byte for byte.
 */
const roundTrip = async (dir: string, url: string, tableArgs: ReadonlyArray<string>) => {
  const source = join(dir, "sessions.jsonl")
  const exported = join(dir, "exported.jsonl")
  writeFileSync(source, original)

  const first = await run(["--file", source, "import", url, ...tableArgs])
  expect(first.status, first.stderr).toBe(0)
  expect(first.stdout).toMatch(/^imported 310 session\(s\) from .* into .*: 310 saved, 0 unchanged\n$/)
  // a pipe is not a terminal: no progress line
  expect(first.stderr).toBe("")
  const again = await run(["--file", source, "import", url, ...tableArgs])
  expect(again.stdout).toMatch(/: 0 saved, 310 unchanged\n$/)

  const out = await run(["--file", exported, "export", url, ...tableArgs])
  expect(out.status, out.stderr).toBe(0)
  expect(out.stdout).toMatch(/^exported 310 session\(s\) from .* into .*exported\.jsonl: 310 saved, 0 unchanged\n$/)
  // the same lines in the same order; the store ends every line with a newline
  expect(readFileSync(exported, "utf8")).toBe(`${original}\n`)
  const outAgain = await run(["--file", exported, "export", url, ...tableArgs])
  expect(outAgain.stdout).toMatch(/: 0 saved, 310 unchanged\n$/)
  expect(readFileSync(exported, "utf8")).toBe(`${original}\n`)

  // one session changed in the file: the next import saves that one only
  const lines = original.split("\n")
  lines[7] = (lines[7] ?? "").replace(`"rounds_completed":0`, `"rounds_completed":4`)
  writeFileSync(source, lines.join("\n"))
  const changed = await run(["--file", source, "import", url, ...tableArgs])
  expect(changed.stdout).toMatch(/: 1 saved, 309 unchanged\n$/)
}

/** five runs of the command, each starting Node and the drivers: slow on a loaded machine */
const ROUND_TRIP_TIMEOUT = 300_000

const withDir = async (body: (dir: string) => Promise<void>) => {
  const dir = mkdtempSync(join(tmpdir(), "cli-transfer-test-"))
  try {
    await body(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe("intent-sessions import and export", () => {
  it(
    "SQLite: byte-identical both ways, a second run changes nothing, the count at the end",
    () => withDir((dir) => roundTrip(dir, `sqlite:${join(dir, "sessions.db")}`, [])),
    ROUND_TRIP_TIMEOUT
  )

  it("a progress line on a terminal, cleared at the end", () =>
    withDir(async (dir) => {
      const source = join(dir, "sessions.jsonl")
      writeFileSync(source, original)
      // `script` gives the command a terminal: stdout and stderr both go to it
      const result = await runProcess("script", [
        "-qec",
        `${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} --file ${source} import sqlite:${
          join(dir, "s.db")
        }`,
        "/dev/null"
      ], { env })
      const screen = result.stdout
      expect(result.status, screen).toBe(0)
      expect(screen).toMatch(/\rimporting: \d+ read, \d+ saved, 0 unchanged/)
      expect(screen).toContain("\r\x1b[K")
      expect(screen).toContain("310 saved, 0 unchanged")
    }))

  it("a URL that names no database: usage error, one line, exit 2", () =>
    withDir(async (dir) => {
      const result = await run(["--file", join(dir, "s.jsonl"), "import", "mysql://host/db"])
      expect(result.status).toBe(2)
      expect(result.stderr.trim().split("\n")).toEqual([
        `intent-sessions: not a database URL: "mysql://host/db" (postgres://... or sqlite:<file>) (see intent-sessions --help)`
      ])
    }))
})

const pgUrl = process.env.INTENT_TEST_PG_URL ?? ""
const reached = pgUrl === ""
  ? { ok: false, reason: "INTENT_TEST_PG_URL is not set (.ci/run sets it after starting PostgreSQL)" }
  : await Effect.runPromise(Effect.either(Pg.ping(pgUrl))).then((either) =>
    either._tag === "Right" ? { ok: true, reason: "" } : { ok: false, reason: either.left.message }
  )

const dropTable = (table: string) =>
  Effect.scoped(Effect.gen(function*() {
    const sql = yield* PgClient.make({ url: Redacted.make(pgUrl) })
    yield* sql.unsafe(
      `DROP TABLE IF EXISTS ${table}; DROP SEQUENCE IF EXISTS ${table}_save_seq; DROP TABLE IF EXISTS ${table}_migrations`
    )
  })).pipe(Effect.provide(Reactivity.layer), Effect.runPromise)

describe("intent-sessions import and export on PostgreSQL", () => {
  if (!reached.ok && process.env.CI !== "true") {
    it.skip(`skipped: ${reached.reason}`, () => undefined)
    return
  }
  it("byte-identical both ways, a second run changes nothing, the count at the end", async () => {
    // CI=true: a missing server fails here instead of skipping
    expect(reached.ok, reached.reason).toBe(true)
    const table = `cli_${process.pid}_${Math.floor(Math.random() * 1e9).toString(36)}`
    try {
      await withDir((dir) => roundTrip(dir, pgUrl, ["--table", table]))
    } finally {
      await dropTable(table)
    }
  }, ROUND_TRIP_TIMEOUT)
})
