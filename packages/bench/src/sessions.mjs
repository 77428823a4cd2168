// SessionStorage: save into stores of growing size (the append design, the
// original rewrite-the-file design, lowdb), get and list, and many processes
// saving into one store.
import { Effect, Exit, Scope } from "effect"
import { Low } from "lowdb"
import { JSONFile } from "lowdb/node"
import { fork } from "node:child_process"
import { mkdirSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { now, shuffled, summarize } from "./measure.mjs"
import { openStore, withStore } from "./stores.mjs"

const here = dirname(fileURLToPath(import.meta.url))

const base = {
  id: "",
  profile: "api",
  created_at: "2026-01-15T01:16:29.875-06:00",
  updated_at: "2026-01-15T01:16:29.875-06:00",
  completed_at: "",
  stage: "discovery",
  rounds_completed: 0,
  answers: [],
  gaps: [],
  conflicts: [],
  raw_notes: ""
}
const LINE_BYTES = 1024
const overhead = Buffer.byteLength(JSON.stringify(base)) + 16 // room for the id

/** A session whose JSON line is about 1 KiB. */
export const sessionOf = (id, note) => ({ ...base, id, raw_notes: note.padEnd(LINE_BYTES - overhead, ".") })

export const sessionBytes = Buffer.byteLength(JSON.stringify(sessionOf("s-0000", "x")))

/** A JSON Lines store file holding sessions `s-0` … `s-<size - 1>`, written directly. */
export const fill = (file, size) => {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(
    file,
    Array.from({ length: size }, (_, i) => JSON.stringify(sessionOf(`s-${i}`, "initial"))).join("\n") + "\n"
  )
}

/** A contender holds a store of `size` sessions and saves one session. */
const makeContenders = async (root, size, scope) => {
  const storage = async (name, options) => {
    const file = join(root, "sessions", String(size), name.replace(/\W+/g, "-"), "sessions.jsonl")
    fill(file, size)
    const store = await openStore({ kind: "file", path: file, options }, scope)
    await Effect.runPromise(store.list()) // index the file once, as any first use does
    return { name, store, saves: (sessions) => timedSaves(store, sessions) }
  }
  const lowdb = async () => {
    const file = join(root, "sessions", String(size), "lowdb", "db.json")
    mkdirSync(dirname(file), { recursive: true })
    const sessions = {}
    for (let i = 0; i < size; i++) sessions[`s-${i}`] = sessionOf(`s-${i}`, "initial")
    const db = new Low(new JSONFile(file), { sessions: {} })
    db.data = { sessions }
    await db.write()
    await db.read()
    return {
      name: "lowdb 7 (JSONFile: whole file rewritten by steno, no fsync)",
      saves: async (list) => {
        const times = []
        for (const session of list) {
          const started = now()
          db.data.sessions[session.id] = session
          await db.write()
          times.push(now() - started)
        }
        return times
      }
    }
  }
  return [
    await storage("append (this package), \"full\"", { durability: "full" }),
    await storage("append (this package), \"none\"", { durability: "none" }),
    await storage("rewrite (original design: compactEverySave), \"full\"", {
      durability: "full",
      compactEverySave: true
    }),
    await storage("rewrite (original design: compactEverySave), \"none\"", {
      durability: "none",
      compactEverySave: true
    }),
    await lowdb()
  ]
}

/** Saves `sessions` one after another; the time of each save in µs. */
export const timedSaves = (store, sessions) =>
  Effect.runPromise(Effect.forEach(sessions, (session) =>
    Effect.suspend(() => {
      const started = now()
      return Effect.map(store.save(session), () => now() - started)
    })))

/**
 * For each store size: rounds in which the contenders run in random order,
 * each saving `perRound` existing sessions picked at random (fewer for the
 * designs that rewrite the whole file at large sizes, so the run stays short).
 */
export const runSaves = async ({ root, sizes, rounds, perRound, log }) => {
  const rows = []
  let reads
  for (const size of sizes) {
    const scope = await Effect.runPromise(Scope.make())
    const contenders = await makeContenders(root, size, scope)
    const times = new Map(contenders.map((c) => [c.name, []]))
    for (let round = 0; round < rounds; round++) {
      for (const contender of shuffled(contenders)) {
        const count = perRound(size, contender.name.startsWith("append"))
        const sessions = Array.from(
          { length: count },
          (_, i) => sessionOf(`s-${Math.floor(Math.random() * size)}`, `round ${round} save ${i}`)
        )
        times.get(contender.name).push(...await contender.saves(sessions))
      }
    }
    for (const contender of contenders) {
      rows.push({ size, name: contender.name, ...summarize(times.get(contender.name)) })
    }
    if (size === sizes[sizes.length - 1]) {
      reads = await measureReads(contenders[0].store, size, {
        gets: rounds * 20,
        lists: Math.max(3, Math.ceil(rounds / 2))
      })
    }
    await Effect.runPromise(Scope.close(scope, Exit.void))
    log(`sessions: ${size} done`)
  }
  return { rows, reads, sessionBytes }
}

/**
 * `gets` calls to `get` of random ids, then `lists` calls to `list` of the
 * whole store (which must return all `size` sessions), on an indexed store.
 */
export const measureReads = async (store, size, { gets: getCount, lists: listCount }) => {
  const gets = await Effect.runPromise(Effect.forEach(Array.from({ length: getCount }), () =>
    Effect.suspend(() => {
      const started = now()
      return Effect.map(store.get(`s-${Math.floor(Math.random() * size)}`), () => now() - started)
    })))
  const lists = await Effect.runPromise(
    Effect.forEach(Array.from({ length: listCount }), () =>
      Effect.suspend(() => {
        const started = now()
        return Effect.map(store.list(), (all) => {
          if (all.length !== size) throw new Error(`list returned ${all.length} sessions, not ${size}`)
          return now() - started
        })
      }))
  )
  return { size, get: summarize(gets), list: summarize(lists) }
}

/**
 * `processes` child processes save `count` new sessions each into one store
 * (by default a JSON Lines file under `root`, durability "full"; `spec` is
 * another backend, see stores.mjs), started together once all are ready.
 * Saves per second over the span from the first start to the last finish;
 * then every session must be in the store (`lost` counts those missing).
 */
export const runProcesses = async ({ root, processes, count, spec }) => {
  if (spec === undefined) {
    const file = join(root, "processes", "sessions.jsonl")
    mkdirSync(dirname(file), { recursive: true })
    spec = { kind: "file", path: file }
  }
  const children = Array.from(
    { length: processes },
    (_, worker) => fork(join(here, "child", "saveSessions.mjs"), [JSON.stringify(spec), String(worker), String(count)])
  )
  const ready = children.map((child) => new Promise((resolve) => child.once("message", resolve)))
  const done = children.map((child) =>
    new Promise((resolve, reject) => {
      child.on("message", (message) => message.finished !== undefined && resolve(message))
      child.once("exit", (code) => code !== 0 && reject(new Error(`a saving process exited with ${code}`)))
    })
  )
  await Promise.all(ready)
  for (const child of children) child.send("go")
  const results = await Promise.all(done)
  const span = Math.max(...results.map((r) => r.finished)) - Math.min(...results.map((r) => r.started))

  const all = await withStore(spec, (store) => Effect.runPromise(store.list()))
  const found = new Set(all.map((s) => s.id))
  let lost = 0
  for (let worker = 0; worker < processes; worker++) {
    for (let i = 0; i < count; i++) if (!found.has(`p${worker}-${i}`)) lost++
  }
  return {
    processes,
    count,
    total: processes * count,
    spanMs: span,
    perSecond: (processes * count) / (span / 1000),
    lost
  }
}
