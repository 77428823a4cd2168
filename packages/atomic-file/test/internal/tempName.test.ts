import { describe, expect, it } from "@effect/vitest"
import { makeTempName, parseTempName, truncateUtf8 } from "../../src/internal/tempName.js"

const byteLength = (s: string) => new TextEncoder().encode(s).length

describe("temporary names", () => {
  it("are hidden, recognizable, carry the pid, and differ each time", () => {
    const a = makeTempName("sessions.jsonl", 1234)
    const b = makeTempName("sessions.jsonl", 1234)
    expect(a).toMatch(/^\.sessions\.jsonl~1234-[0-9a-f]{16}#atomic-tmp$/)
    expect(a).not.toBe(b)
    expect(parseTempName(a)).toEqual({ pid: 1234 })
  })

  it("stay within 255 bytes whatever the target name", () => {
    for (const base of ["a".repeat(255), "é".repeat(127), "😀".repeat(63), "x", "名".repeat(85)]) {
      const name = makeTempName(base, 4294967295)
      expect(byteLength(name)).toBeLessThanOrEqual(255)
      expect(parseTempName(name)).toEqual({ pid: 4294967295 })
      // never a broken character
      expect(name).not.toContain("\uFFFD")
    }
  })

  it("truncateUtf8 cuts at a character boundary", () => {
    expect(truncateUtf8("abc", 10)).toBe("abc")
    expect(truncateUtf8("abcdef", 3)).toBe("abc")
    expect(truncateUtf8("éé", 3)).toBe("é")
    expect(truncateUtf8("😀😀", 7)).toBe("😀")
  })

  it("other names are not recognized", () => {
    for (
      const name of [
        "sessions.jsonl",
        ".sessions.jsonl.tmp",
        "sessions.jsonl~12-0123456789abcdef#atomic-tmp", // no leading dot
        ".s~12-0123456789abcde#atomic-tmp", // 15 hex
        ".s~12-0123456789ABCDEF#atomic-tmp", // upper case
        ".s~x-0123456789abcdef#atomic-tmp",
        ".s~12-0123456789abcdef#atomic-tmp.bak"
      ]
    ) {
      expect(parseTempName(name)).toBeUndefined()
    }
  })
})
