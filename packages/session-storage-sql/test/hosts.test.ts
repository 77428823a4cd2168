/**
 * Several hosts on one PostgreSQL server, made of network namespaces this
 * test creates: a bridge in a namespace of its own, a server namespace
 * running a PostgreSQL the test starts (initdb into a temp directory), and
 * three client namespaces running writer processes. Every address a packet
 * goes to belongs to one of these namespaces. Root only.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { childProcessesOf } from "../../../test-support/childProcess.js"
import { session } from "./contract.js"

const isRoot = process.getuid?.() === 0
const packageRoot = fileURLToPath(new URL("..", import.meta.url))
// the scripts run bundled: loaded module by module, each of the 26 processes spends ~2 s of CPU starting
const { bundleScript } = childProcessesOf(new URL("..", import.meta.url))
const distPg = fileURLToPath(new URL("../dist/Pg.js", import.meta.url))

/** The newest PostgreSQL installed from Debian's packages, if any. */
const pgBin = (() => {
  try {
    const versions = readdirSync("/usr/lib/postgresql").filter((v) => /^\d+$/.test(v)).sort((a, b) => +b - +a)
    const bin = versions.map((v) => `/usr/lib/postgresql/${v}/bin`).find((dir) => existsSync(`${dir}/postgres`))
    return bin
  } catch {
    return undefined
  }
})()
const hasIp = (() => {
  try {
    execFileSync("ip", ["-V"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
})()

const skipReason = !isRoot
  ? "needs root (network namespaces)"
  : !hasIp
  ? "needs iproute2 (ip)"
  : pgBin === undefined
  ? "needs PostgreSQL's binaries (apt-get install postgresql)"
  : undefined

const HOSTS = 3
const PROCESSES = 4
const SAVES = 100
const SUBNET = "10.99.0"
const SERVER_ADDRESS = `${SUBNET}.1`
const PORT = 5432

/** Saves `count` sessions `<tag>-<i>`, printing `ack <id>` once each save returned. */
const writerScript = `
  import { Effect } from "effect"
  import { SessionStorage } from "@intent/session-storage"
  import * as Pg from ${JSON.stringify(distPg)}
  const [url, table, tag, count] = process.argv.slice(1)
  const base = ${JSON.stringify(session("template"))}
  Effect.gen(function*() {
    const store = yield* SessionStorage.SessionStorage
    for (let i = 0; i < Number(count); i++) {
      const id = tag + "-" + i
      yield* store.save({ ...base, id, raw_notes: "saved by " + tag })
      process.stdout.write("ack " + id + "\\n")
    }
  }).pipe(
    Effect.provide(Pg.layer({ url, table, maxConnections: 1 })),
    Effect.runPromise
  ).then(() => console.log("done"), (e) => { console.log("failed " + e); process.exit(1) })
`

/** Prints the ids of the store, one per line, in list order. */
const listScript = `
  import { Effect } from "effect"
  import { SessionStorage } from "@intent/session-storage"
  import * as Pg from ${JSON.stringify(distPg)}
  const [url, table] = process.argv.slice(1)
  Effect.gen(function*() {
    const store = yield* SessionStorage.SessionStorage
    for (const s of yield* store.list()) process.stdout.write(s.id + "\\n")
  }).pipe(Effect.provide(Pg.layer({ url, table })), Effect.runPromise)
    .catch((e) => { console.error(String(e)); process.exit(1) })
`

const sh = (command: string, args: ReadonlyArray<string>) =>
  execFileSync(command, args, { stdio: ["ignore", "pipe", "pipe"] }).toString()

interface Running {
  readonly child: ChildProcess
  readonly acks: Array<string>
  readonly output: Array<string>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const startIn = (namespace: string, command: ReadonlyArray<string>, cwd?: string): Running => {
  // `ip netns exec` execs the command in place: the child's pid is the command's
  const child = spawn("ip", ["netns", "exec", namespace, ...command], {
    cwd: cwd ?? packageRoot,
    stdio: ["ignore", "pipe", "pipe"]
  })
  const acks: Array<string> = []
  const output: Array<string> = []
  let buffer = ""
  const onData = (data: Buffer) => {
    buffer += data.toString()
    const parts = buffer.split("\n")
    buffer = parts.pop() ?? ""
    for (const line of parts) {
      output.push(line)
      if (line.startsWith("ack ")) acks.push(line.slice(4))
    }
  }
  child.stdout?.on("data", onData)
  child.stderr?.on("data", (data: Buffer) => output.push(data.toString().trimEnd()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal }))
  )
  return { child, acks, output, exited }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const waitUntil = async (condition: () => boolean, what: string, timeoutMs = 60_000) => {
  const started = Date.now()
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/**
 * The network: namespaces, veths, the bridge, and the server; `teardown`
 * undoes whatever was made, in reverse, whatever failed.
 */
const makeNetwork = async () => {
  const id = `${(process.pid % 46656).toString(36)}${Math.floor(Math.random() * 46656).toString(36)}`
  const bridgeNs = `i9b-${id}`
  const serverNs = `i9s-${id}`
  const clientNs = Array.from({ length: HOSTS }, (_, i) => `i9c${i + 1}-${id}`)
  const made: Array<string> = []
  const undo: Array<() => void | Promise<void>> = []
  let server: Running | undefined
  const dataDir = mkdtempSync(join(tmpdir(), "session-storage-sql-hosts-"))
  undo.push(() => rmSync(dataDir, { recursive: true, force: true }))

  const teardown = async () => {
    if (server !== undefined && server.child.exitCode === null && server.child.signalCode === null) {
      // SIGINT: PostgreSQL's fast shutdown; SIGKILL if it lingers
      server.child.kill("SIGINT")
      const stopped = await Promise.race([server.exited.then(() => true), sleep(10_000).then(() => false)])
      if (!stopped) server.child.kill("SIGKILL")
      await server.exited
    }
    for (const namespace of made.reverse()) {
      try {
        sh("ip", ["netns", "del", namespace])
      } catch {
        // already gone
      }
    }
    for (const step of undo.reverse()) await step()
  }

  try {
    for (const namespace of [bridgeNs, serverNs, ...clientNs]) {
      sh("ip", ["netns", "add", namespace])
      made.push(namespace)
      sh("ip", ["-n", namespace, "link", "set", "lo", "up"])
    }
    sh("ip", ["-n", bridgeNs, "link", "add", "br0", "type", "bridge"])
    sh("ip", ["-n", bridgeNs, "link", "set", "br0", "up"])
    const hosts = [[serverNs, SERVER_ADDRESS], ...clientNs.map((ns, i) => [ns, `${SUBNET}.${11 + i}`])] as const
    for (const [index, [namespace, address]] of hosts.entries()) {
      // made inside the bridge namespace, the peer moved straight into the host's
      const port = `p${index}`
      sh("ip", ["-n", bridgeNs, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace])
      sh("ip", ["-n", bridgeNs, "link", "set", port, "master", "br0"])
      sh("ip", ["-n", bridgeNs, "link", "set", port, "up"])
      sh("ip", ["-n", namespace, "addr", "add", `${address}/24`, "dev", "eth0"])
      sh("ip", ["-n", namespace, "link", "set", "eth0", "up"])
    }

    // a server of our own: initdb into the temp directory, run as postgres
    const pgData = join(dataDir, "data")
    sh("chown", ["postgres:postgres", dataDir])
    sh("setpriv", [
      "--reuid=postgres",
      "--regid=postgres",
      "--init-groups",
      `${pgBin}/initdb`,
      "-D",
      pgData,
      "-U",
      "postgres",
      "--auth=trust",
      "--no-sync"
    ])
    writeFileSync(join(pgData, "pg_hba.conf"), `local all all trust\nhost all all ${SUBNET}.0/24 trust\n`)
    server = startIn(serverNs, [
      "setpriv",
      "--reuid=postgres",
      "--regid=postgres",
      "--init-groups",
      `${pgBin}/postgres`,
      "-D",
      pgData,
      "-k",
      dataDir,
      "-c",
      `listen_addresses=${SERVER_ADDRESS}`,
      "-p",
      String(PORT),
      "-c",
      "max_connections=60",
      "-c",
      "shared_buffers=16MB"
    ], dataDir)
    const url = `postgres://postgres@${SERVER_ADDRESS}:${PORT}/postgres`
    const firstClient = clientNs[0] as string
    await waitUntil(() => {
      try {
        sh("ip", ["netns", "exec", firstClient, `${pgBin}/pg_isready`, "-q", "-h", SERVER_ADDRESS, "-p", String(PORT)])
        return true
      } catch {
        return false
      }
    }, "the PostgreSQL server in its namespace")
    return { id, url, clientNs, server, teardown, made }
  } catch (error) {
    await teardown()
    throw error
  }
}

const listIds = async (namespace: string, url: string, table: string) => {
  const lister = startIn(namespace, [process.execPath, await Effect.runPromise(bundleScript(listScript)), url, table])
  const exit = await lister.exited
  expect(exit.code, lister.output.slice(-3).join(" | ")).toBe(0)
  return lister.output.filter((line) => line.length > 0)
}

describe.skipIf(skipReason !== undefined)("several hosts on one PostgreSQL server (network namespaces)", () => {
  it(
    "3 hosts x 4 processes x 100 saves: all 1,200 sessions; then one host SIGKILLed half way: every acknowledged save",
    async () => {
      expect(existsSync(distPg), "build first: pnpm build").toBe(true)
      const network = await makeNetwork()
      const namespacesBefore = sh("ip", ["netns", "list"])
      expect(network.made.every((ns) => namespacesBefore.includes(ns))).toBe(true)
      try {
        const writer = await Effect.runPromise(bundleScript(writerScript))
        const writers = (table: string) =>
          network.clientNs.flatMap((namespace, host) =>
            Array.from({ length: PROCESSES }, (_, p) =>
              startIn(namespace, [
                process.execPath,
                writer,
                network.url,
                table,
                `h${host + 1}p${p + 1}`,
                String(SAVES)
              ]))
          )

        // 1. everyone finishes
        const all = writers("sessions_all")
        for (const running of all) {
          const exit = await running.exited
          expect(exit.code, running.output.slice(-3).join(" | ")).toBe(0)
        }
        const everyId = all.flatMap((running) => running.acks)
        expect(everyId.length).toBe(HOSTS * PROCESSES * SAVES)
        const stored = await listIds(network.clientNs[1] as string, network.url, "sessions_all")
        expect(stored.length).toBe(HOSTS * PROCESSES * SAVES)
        expect(new Set(stored)).toEqual(new Set(everyId))

        // 2. host 3's processes are killed half way through
        const second = writers("sessions_killed")
        const victims = second.slice((HOSTS - 1) * PROCESSES)
        // each killed as soon as it has acknowledged half its saves (this listener runs after startIn's)
        for (const victim of victims) {
          victim.child.stdout?.on("data", () => {
            if (victim.acks.length >= SAVES / 2) victim.child.kill("SIGKILL")
          })
        }
        for (const running of second) {
          const exit = await running.exited
          if (victims.includes(running)) {
            expect(exit.signal, running.output.slice(-3).join(" | ")).toBe("SIGKILL")
            expect(running.acks.length).toBeLessThan(SAVES)
          } else {
            expect(exit.code, running.output.slice(-3).join(" | ")).toBe(0)
          }
        }
        const acknowledged = second.flatMap((running) => running.acks)
        const survived = new Set(await listIds(network.clientNs[0] as string, network.url, "sessions_killed"))
        const lost = acknowledged.filter((id) => !survived.has(id))
        expect(lost).toEqual([])
        expect(survived.size).toBeGreaterThanOrEqual((HOSTS - 1) * PROCESSES * SAVES + PROCESSES * SAVES / 2)
        // at most one save per killed process was in flight: stored, not acknowledged
        expect(survived.size - acknowledged.length).toBeLessThanOrEqual(PROCESSES)
      } finally {
        await network.teardown()
        const after = sh("ip", ["netns", "list"])
        expect(network.made.filter((ns) => after.includes(ns))).toEqual([])
      }
    },
    300_000
  )
})

if (skipReason !== undefined) {
  describe("several hosts on one PostgreSQL server", () => {
    it.skip(`skipped: ${skipReason}`, () => undefined)
  })
}
