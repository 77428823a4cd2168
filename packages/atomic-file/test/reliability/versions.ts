/**
 * Self-describing versions of a file: a header line
 * `version <n> length <bytes> sha256 <hex>` and the payload. A reader can
 * tell from the bytes alone whether it holds exactly one complete version.
 * The writer children make the same format in JavaScript (`versionSource`).
 * Used by the kill, reader and power-loss tests (the latter through
 * ./writtenVersions.ts).
 */
import { createHash } from "node:crypto"

const encoder = new TextEncoder()
const HEADER = /^version (\d+) length (\d+) sha256 ([0-9a-f]{64})$/

/** Version `n` with `payload`. */
export const versionBytes = (n: number, payload: Uint8Array): Uint8Array => {
  const sha = createHash("sha256").update(payload).digest("hex")
  const header = encoder.encode(`version ${n} length ${payload.length} sha256 ${sha}\n`)
  const out = new Uint8Array(header.length + payload.length)
  out.set(header)
  out.set(payload, header.length)
  return out
}

/**
 * The source of a JavaScript function `version(n, size)` returning the bytes
 * of version `n` with `size` random payload bytes, for a child's script
 * (which must import `createHash` and `randomBytes` from `node:crypto`).
 */
export const versionSource = `
  const version = (n, size) => {
    const payload = randomBytes(size)
    const sha = createHash("sha256").update(payload).digest("hex")
    return Buffer.concat([Buffer.from("version " + n + " length " + size + " sha256 " + sha + "\\n"), payload])
  }
`

/** The version the bytes hold, or why they are not exactly one complete version. */
export const parseVersion = (bytes: Uint8Array): { readonly version: number } | { readonly problem: string } => {
  const newline = bytes.indexOf(0x0a)
  if (newline < 0) return { problem: `no header (${bytes.length} bytes)` }
  const match = HEADER.exec(new TextDecoder().decode(bytes.subarray(0, newline)))
  if (match === null) return { problem: "bad header" }
  const payload = bytes.subarray(newline + 1)
  if (payload.length !== Number(match[2])) return { problem: `length ${payload.length}, header says ${match[2]}` }
  if (createHash("sha256").update(payload).digest("hex") !== match[3]) return { problem: "checksum mismatch" }
  return { version: Number(match[1]) }
}
