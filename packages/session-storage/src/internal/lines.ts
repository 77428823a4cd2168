/**
 * Splitting the bytes of a JSON Lines file into lines, and telling what each
 * line is. Works chunk by chunk, so a file is never held in memory whole, and
 * a line longer than the limit is measured but never buffered.
 */
import * as Either from "effect/Either"
import { decodeLine, type InterviewSession } from "../InterviewSession.js"

const NEWLINE = 0x0a

/** One line: where it is, and its bytes unless it is longer than the limit. */
export interface RawLine {
  /** 1-based */
  readonly number: number
  /** byte offset of its first byte in the file */
  readonly offset: number
  /** bytes, without the newline */
  readonly length: number
  /** false only for a final line with no newline after it */
  readonly terminated: boolean
  /** undefined when `length` is over the limit */
  readonly bytes: Uint8Array | undefined
}

/**
 * A stateful splitter: `push` chunks in file order, then `end` once. Lines
 * are numbered and located from `startOffset`/`startLine`.
 */
export const makeLineSplitter = (maxLineBytes: number, startOffset = 0, startLine = 0) => {
  let offset = startOffset // offset of the current (unfinished) line
  let number = startLine
  let parts: Array<Uint8Array> = []
  let length = 0

  const take = (terminated: boolean): RawLine => {
    number++
    let bytes: Uint8Array | undefined
    if (length <= maxLineBytes) {
      bytes = parts.length === 1 ? parts[0] : concat(parts, length)
    }
    const line: RawLine = { number, offset, length, terminated, bytes: bytes ?? undefined }
    offset += length + (terminated ? 1 : 0)
    parts = []
    length = 0
    return line
  }

  const keep = (piece: Uint8Array) => {
    if (length + piece.length <= maxLineBytes) {
      // copy: the chunk's buffer may be reused by the reader
      parts.push(piece.slice())
    } else {
      parts = []
    }
    length += piece.length
  }

  return {
    push: (chunk: Uint8Array): Array<RawLine> => {
      const out: Array<RawLine> = []
      let start = 0
      while (start < chunk.length) {
        const end = chunk.indexOf(NEWLINE, start)
        if (end === -1) {
          keep(chunk.subarray(start))
          break
        }
        keep(chunk.subarray(start, end))
        out.push(take(true))
        start = end + 1
      }
      return out
    },
    end: (): Array<RawLine> => (length > 0 || parts.length > 0 ? [take(false)] : [])
  }
}

const concat = (parts: ReadonlyArray<Uint8Array>, length: number): Uint8Array => {
  const out = new Uint8Array(length)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/** What a line of the store is. */
export type Entry =
  | { readonly _tag: "Record"; readonly line: RawLine; readonly id: string; readonly session: InterviewSession }
  | { readonly _tag: "Tombstone"; readonly line: RawLine; readonly id: string }
  | { readonly _tag: "Blank"; readonly line: RawLine }
  | { readonly _tag: "Corrupt"; readonly line: RawLine; readonly problem: string }
  | { readonly _tag: "Torn"; readonly line: RawLine; readonly problem: string }

const TOMBSTONE_KEY = "$deleted"
const utf8 = new TextDecoder("utf-8", { fatal: true })
const encoder = new TextEncoder()

/** The line that records the removal of `id`: `{"$deleted":"<id>"}`. */
export const tombstoneLine = (id: string): string => JSON.stringify({ [TOMBSTONE_KEY]: id })

export const encodeText = (text: string): Uint8Array => encoder.encode(text)

/**
 * Classifies a line. A final line without a newline that parses is a record
 * (the original tool never wrote a final newline); one that does not is a
 * torn fragment of an interrupted write.
 */
export const classify = (line: RawLine, maxLineBytes: number, maxIdLength: number): Entry => {
  const bad = (problem: string): Entry =>
    line.terminated ? { _tag: "Corrupt", line, problem } : { _tag: "Torn", line, problem }
  if (line.bytes === undefined) {
    return bad(`the line has ${line.length} bytes, more than the limit of ${maxLineBytes}`)
  }
  let text: string
  try {
    text = utf8.decode(line.bytes)
  } catch {
    return bad("the line is not valid UTF-8")
  }
  if (text.trim().length === 0) {
    return line.terminated ? { _tag: "Blank", line } : { _tag: "Torn", line, problem: "whitespace without a newline" }
  }
  if (text.startsWith(`{"${TOMBSTONE_KEY}":`)) {
    try {
      const parsed = JSON.parse(text) as Record<string, unknown>
      const id = parsed[TOMBSTONE_KEY]
      if (typeof id === "string" && Object.keys(parsed).length === 1) {
        return { _tag: "Tombstone", line, id }
      }
    } catch {
      // falls through to the generic problem below
    }
    return bad("a malformed removal record")
  }
  const decoded = decodeLine(text)
  if (Either.isLeft(decoded)) return bad(decoded.left)
  if (decoded.right.id.length > maxIdLength) {
    return bad(`the id is longer than ${maxIdLength} characters`)
  }
  return { _tag: "Record", line, id: decoded.right.id, session: decoded.right }
}
