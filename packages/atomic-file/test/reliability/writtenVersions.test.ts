/**
 * The checks of the power-loss test, on contents made here: they must tell
 * a complete version from a torn, empty, missing or older one, and read an
 * append log the way session-storage reads JSON Lines.
 */
import { describe, expect, it } from "@effect/vitest"
import { createHash } from "node:crypto"
import { versionBytes as version } from "./versions.js"
import { checkLog, checkVersion } from "./writtenVersions.js"

const sha256 = (data: Uint8Array | string) => createHash("sha256").update(data).digest("hex")
const encoder = new TextEncoder()

/** An append record (one line, no newline) as the writer child makes it. */
const record = (n: number, payload = "ab".repeat(n * 10)) =>
  JSON.stringify({ n, length: payload.length, sha256: sha256(payload), payload })

const payload = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7919) % 251)

describe("checkVersion", () => {
  it("a complete version: the last acknowledged or the one after is intact", () => {
    expect(checkVersion(version(5, payload), 5)).toBe("intact")
    expect(checkVersion(version(6, payload), 5)).toBe("intact")
    expect(checkVersion(version(1, new Uint8Array(0)), 1)).toBe("intact")
  })

  it("an older complete version lost acknowledged data; two newer is a fault of the harness", () => {
    expect(checkVersion(version(4, payload), 5)).toBe("lost")
    expect(checkVersion(version(7, payload), 5)).toBe("ahead")
  })

  it("no file, an empty file", () => {
    expect(checkVersion(undefined, 1)).toBe("missing")
    expect(checkVersion(new Uint8Array(0), 1)).toBe("empty")
  })

  it("torn: cut short, zeroed blocks, a changed byte, a bare header, extra bytes", () => {
    const full = version(5, payload)
    expect(checkVersion(full.subarray(0, full.length - 1), 5)).toBe("torn")
    const zeroed = full.slice()
    zeroed.fill(0, 4096, 8192)
    expect(checkVersion(zeroed, 5)).toBe("torn")
    const changed = full.slice()
    changed.set([(full.at(-1) ?? 0) ^ 1], full.length - 1)
    expect(checkVersion(changed, 5)).toBe("torn")
    expect(checkVersion(full.subarray(0, full.indexOf(0x0a)), 5)).toBe("torn")
    expect(checkVersion(new Uint8Array([...full, 0]), 5)).toBe("torn")
    expect(checkVersion(new Uint8Array(8192), 5)).toBe("torn")
  })
})

describe("checkLog", () => {
  const log = (...lines: ReadonlyArray<string>) => encoder.encode(lines.join(""))
  const three = [1, 2, 3].map((n) => `${record(n)}\n`)

  it("every acknowledged record, or one more, is intact", () => {
    expect(checkLog(log(...three), 3)).toEqual({ verdict: "intact", fragment: false })
    expect(checkLog(log(...three), 2)).toEqual({ verdict: "intact", fragment: false })
  })

  it("fewer records than acknowledged lost data; two more is a fault of the harness", () => {
    expect(checkLog(log(...three), 4).verdict).toBe("lost")
    expect(checkLog(log(...three), 1).verdict).toBe("ahead")
    expect(checkLog(undefined, 1).verdict).toBe("missing")
    expect(checkLog(new Uint8Array(0), 1).verdict).toBe("empty")
  })

  it("a final fragment that does not parse is ignored, as the reader ignores it", () => {
    const fourth = record(4)
    expect(checkLog(log(...three, fourth.slice(0, 20)), 3)).toEqual({ verdict: "intact", fragment: true })
    expect(checkLog(log(...three, "\0".repeat(4096)), 3)).toEqual({ verdict: "intact", fragment: true })
    // a complete final record without its newline is read as a record
    expect(checkLog(log(...three, fourth), 4)).toEqual({ verdict: "intact", fragment: false })
  })

  it("torn: a terminated partial record, a zeroed line, a bad checksum, a gap, a parsing final line that is not a record", () => {
    const fourth = record(4)
    expect(checkLog(log(...three, `${fourth.slice(0, 20)}\n`), 3).verdict).toBe("torn")
    expect(checkLog(log(three[0] ?? "", `${"\0".repeat(100)}\n`, ...three.slice(1)), 3).verdict).toBe("torn")
    expect(checkLog(log(...three, `${fourth.replace(/"payload":"a/, "\"payload\":\"b")}\n`), 3).verdict).toBe("torn")
    expect(checkLog(log(three[0] ?? "", three[2] ?? ""), 1).verdict).toBe("torn")
    expect(checkLog(log(...three, "{}"), 3).verdict).toBe("torn")
  })
})
