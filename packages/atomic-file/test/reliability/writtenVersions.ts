/**
 * What the power-loss test writes and how it reads it back: self-describing
 * whole-file versions and append records, the writer child that produces
 * them, and the checks that tell what an image of the file system shows.
 */
import { createHash } from "node:crypto"
import { parseVersion, versionSource } from "./versions.js"

/**
 * The writer child. Whole-file versions are those of ./versions.ts (a header
 * line `version <n> length <L> sha256 <hex>` and L random bytes); appended records
 * are one JSON line `{"n":..,"length":..,"sha256":..,"payload":..}`. Sizes
 * are log-uniform from 0 to `maxBytes`. After each call returns, the version
 * number is written at offset 0 of the acknowledgement file (on tmpfs, not on
 * the image): read while the child is stopped, it is exactly the last
 * acknowledged version.
 */
export const writerScript = `
  import { NodeContext } from "@effect/platform-node"
  import { Effect } from "effect"
  import { AtomicFile } from DIST
  import { createHash, randomBytes } from "node:crypto"
  import { openSync, writeSync, promises as fsp } from "node:fs"
  const [writer, file, ackFile, maxBytes] = process.argv.slice(1)
  const ackFd = openSync(ackFile, "w")
  // never outlive the test: a writer orphaned by a killed test run would keep its file system busy
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) process.exit(1) }, 500).unref()
  const size = () => Math.floor(Math.exp(Math.random() * Math.log(Number(maxBytes) + 1))) - 1
  const sha256 = (data) => createHash("sha256").update(data).digest("hex")
  ${versionSource}
  const record = (n) => {
    const payload = randomBytes(Math.ceil(size() / 2)).toString("hex")
    return JSON.stringify({ n, length: payload.length, sha256: sha256(payload), payload })
  }
  const writers = {
    "writeFile-full": (atomic, n) => atomic.writeFile(file, version(n, size()), { durability: "full" }),
    "writeFile-none": (atomic, n) => atomic.writeFile(file, version(n, size()), { durability: "none" }),
    "fs.writeFile": (_, n) => Effect.promise(() => fsp.writeFile(file, version(n, size()))),
    "append-full": (atomic, n) => atomic.append(file, record(n), { durability: "full" }),
    "append-none": (atomic, n) => atomic.append(file, record(n), { durability: "none" })
  }
  const write = writers[writer]
  Effect.gen(function*() {
    const atomic = yield* AtomicFile.AtomicFile
    for (let n = 1; ; n++) {
      yield* write(atomic, n)
      writeSync(ackFd, String(n).padStart(16, " "), 0)
      if (n === 1) console.log("ready")
    }
  }).pipe(Effect.provide(AtomicFile.layerNode), Effect.provide(NodeContext.layer), Effect.runPromise)
    .catch((e) => { console.log("failed " + e); process.exit(1) })
`

export type Writer = "writeFile-full" | "writeFile-none" | "fs.writeFile" | "append-full" | "append-none"

/** What a copy shows, against the last acknowledged version `acked`. */
export type Verdict =
  | "intact"
  | "missing" // no file, after at least one acknowledged version
  | "empty" // a file of zero bytes
  | "torn" // not one complete version / a record read back as data that is not one
  | "lost" // a complete, older version: acknowledged data lost
  | "ahead" // more than one version newer than acknowledged: a fault of the harness
  | "damaged" // e2fsck exit >= 4, or the repaired image does not mount

export const badVerdicts = ["missing", "empty", "torn", "lost", "ahead", "damaged"] as const

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex")
const decoder = new TextDecoder()

/** The version number a whole-file version holds, or "torn" (not exactly one complete version). */
const versionOf = (content: Uint8Array): number | "torn" => {
  const parsed = parseVersion(content)
  return "version" in parsed ? parsed.version : "torn"
}

const compare = (found: number, acked: number): Verdict =>
  found < acked ? "lost" : found > acked + 1 ? "ahead" : "intact"

export const checkVersion = (content: Uint8Array | undefined, acked: number): Verdict => {
  if (content === undefined) return "missing"
  if (content.length === 0) return "empty"
  const found = versionOf(content)
  return found === "torn" ? "torn" : compare(found, acked)
}

/**
 * An append log, read the way this project reads its JSON Lines files
 * (session-storage's `classify`): every newline-terminated line is read, and
 * must be a complete record; a final line without a newline is read as a
 * record when it parses, and is otherwise a torn fragment of an interrupted
 * write, ignored. Records read must be 1, 2, ... in order, and at least as
 * many as were acknowledged. `fragments` counts the ignored torn fragments.
 */
export const checkLog = (content: Uint8Array | undefined, acked: number): { verdict: Verdict; fragment: boolean } => {
  if (content === undefined) return { verdict: "missing", fragment: false }
  if (content.length === 0) return { verdict: "empty", fragment: false }
  const lines = decoder.decode(content).split("\n")
  const last = lines.pop() ?? ""
  let fragment = false
  if (last.length > 0) {
    let parsed = true
    try {
      JSON.parse(last)
    } catch {
      parsed = false
    }
    if (parsed) lines.push(last)
    else fragment = true
  }
  for (const [index, line] of lines.entries()) {
    let record: { n?: unknown; length?: unknown; sha256?: unknown; payload?: unknown }
    try {
      record = JSON.parse(line)
    } catch {
      return { verdict: "torn", fragment }
    }
    const complete = record.n === index + 1 && typeof record.payload === "string" &&
      record.length === record.payload.length && record.sha256 === sha256(record.payload)
    if (!complete) return { verdict: "torn", fragment }
  }
  return { verdict: compare(lines.length, acked), fragment }
}
