import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { decodeLine, encodeLine, type InterviewSession } from "../src/InterviewSession.js"

const fixture = (name: string) => readFileSync(fileURLToPath(new URL(`fixtures/${name}`, import.meta.url)), "utf8")
const FIXTURES = ["intent-sessions.jsonl", "interview-sessions.jsonl", "interview-test-session.jsonl"]

const decoded = (line: string): InterviewSession => {
  const result = decodeLine(line)
  if (Either.isLeft(result)) throw new Error(result.left)
  return result.right
}
const encoded = (session: InterviewSession): string => {
  const result = encodeLine(session)
  if (Either.isLeft(result)) throw new Error(result.left)
  return result.right
}

describe("InterviewSession", () => {
  for (const name of FIXTURES) {
    it(`${name}: every line decodes, and encodes back to the same text`, () => {
      const lines = fixture(name).split("\n").filter((line) => line.length > 0)
      expect(lines.length).toBeGreaterThan(0)
      for (const line of lines) {
        expect(encoded(decoded(line))).toBe(line)
      }
    })
  }

  it("keeps unknown keys and their order (the test-session fixture has two)", () => {
    const line = fixture("interview-test-session.jsonl").split("\n")[0] ?? ""
    const session = decoded(line) as InterviewSession & { current_phase?: unknown }
    expect(session.current_phase).toBe(1)
    expect(Object.keys(session).slice(-2)).toEqual(["current_phase", "completed_phases"])
    const reordered = `{"zzz":1,${line.slice(1)}`
    expect(encoded(decoded(reordered))).toBe(reordered)
  })

  it("profile, stage and perspective decode in any case and encode lowercase", () => {
    const line = fixture("interview-sessions.jsonl").split("\n")[0] ?? ""
    const shouting = line.replace(`"stage":"discovery"`, `"stage":"Discovery"`).replace(
      `"profile":"api"`,
      `"profile":"API"`
    )
    expect(shouting).not.toBe(line)
    const session = decoded(shouting)
    expect([session.stage, session.profile]).toEqual(["discovery", "api"])
    expect(encoded(session)).toBe(line)
  })

  it("confidence is written as a float, as the original's decoder requires", () => {
    const line = fixture("interview-sessions.jsonl").split("\n").find((l) => l.includes(`"confidence":`)) ?? ""
    const one = line.replace(/"confidence":[0-9.]+/, `"confidence":1.0`)
    const session = decoded(one)
    expect(session.answers[0]?.confidence).toBe(1)
    expect(encoded(session)).toContain(`"confidence":1.0`)
  })

  it("rejects what the original accepted or rejected inconsistently, with a precise message", () => {
    const base = JSON.parse(fixture("interview-test-session.jsonl").split("\n")[0] ?? "{}") as Record<string, unknown>
    const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
      [{ ...base, id: "" }, "the id is empty"],
      [{ ...base, id: "x".repeat(257) }, "longer than 256"],
      [{ ...base, created_at: "yesterday" }, "not an ISO 8601 timestamp"],
      [{ ...base, updated_at: "2026-13-45T99:00:00Z" }, "not an ISO 8601 timestamp"],
      [{ ...base, stage: "finished" }, "stage must be one of"],
      [{ ...base, rounds_completed: -1 }, "rounds_completed"],
      [{ ...base, answers: "none" }, "answers"]
    ]
    for (const [input, message] of cases) {
      const result = decodeLine(JSON.stringify(input))
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(result.left).toContain(message)
    }
    expect(Either.isLeft(decodeLine("{not json"))).toBe(true)
    expect(Either.getLeft(decodeLine("{not json"))._tag === "Some" && Either.getLeft(decodeLine("{not json")))
      .toBeTruthy()
    expect(encoded(decoded(JSON.stringify({ ...base, id: "x".repeat(256) })))).toContain("x".repeat(256))
  })
})
