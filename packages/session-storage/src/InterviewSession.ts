/**
 * The interview session record of intent-cli, as an Effect Schema that reads
 * every line the original tool wrote and writes lines it can read back.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { InvalidSession } from "./SessionStorageError.js"

/**
 * Unknown keys are kept (at every level) and keys keep their original order,
 * so that decoding then encoding a line gives the same JSON text back.
 */
const preserving = {
  parseOptions: { onExcessProperty: "preserve", propertyOrder: "original" }
} as const

/** A string decoded case-insensitively into one of `literals`, encoded lowercase. */
const caseInsensitive = <const L extends ReadonlyArray<string>>(name: string, literals: L) =>
  Schema.transformOrFail(Schema.String, Schema.Literal(...literals), {
    strict: true,
    decode: (input, _, ast) => {
      const lower = input.toLowerCase()
      return (literals as ReadonlyArray<string>).includes(lower)
        ? ParseResult.succeed(lower as L[number])
        : ParseResult.fail(
          new ParseResult.Type(
            ast,
            input,
            `${name} must be one of ${literals.join(", ")} (any case), got ${JSON.stringify(input)}`
          )
        )
    },
    encode: ParseResult.succeed
  }).annotations({ identifier: name })

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

/**
 * An ISO 8601 date and time with a zone (`Z` or `±hh:mm`), kept as written.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Timestamp = Schema.String.pipe(
  Schema.filter((s) =>
    (ISO_8601.test(s) && !Number.isNaN(Date.parse(s))) || `not an ISO 8601 timestamp: ${JSON.stringify(s)}`
  ),
  Schema.annotations({ identifier: "Timestamp" })
)

/**
 * A `Timestamp`, or `""` for "not yet" (as `completed_at` is until the end).
 *
 * @since 0.1.0
 * @category schemas
 */
export const OptionalTimestamp = Schema.Union(Schema.Literal(""), Timestamp)

/**
 * The default and largest id length.
 *
 * @since 0.1.0
 * @category constants
 */
export const MAX_ID_LENGTH = 256

/**
 * A session id: non-empty, at most 256 characters.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SessionId = Schema.String.pipe(
  Schema.minLength(1, { message: () => "the id is empty" }),
  Schema.maxLength(MAX_ID_LENGTH, { message: () => `the id is longer than ${MAX_ID_LENGTH} characters` }),
  Schema.annotations({ identifier: "SessionId" })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const Profile = caseInsensitive("profile", ["api", "cli", "event", "data", "workflow", "ui"] as const)

/**
 * @since 0.1.0
 * @category schemas
 */
export const Stage = caseInsensitive("stage", ["discovery", "refinement", "validation", "complete", "paused"] as const)

/**
 * @since 0.1.0
 * @category schemas
 */
export const Perspective = caseInsensitive("perspective", ["user", "developer", "ops", "security", "business"] as const)

const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/**
 * @since 0.1.0
 * @category schemas
 */
export const Answer = Schema.Struct({
  question_id: Schema.String,
  question_text: Schema.String,
  perspective: Perspective,
  round: NonNegativeInt,
  response: Schema.String,
  extracted: Schema.Record({ key: Schema.String, value: Schema.String }),
  confidence: Schema.Number.pipe(Schema.finite()),
  notes: Schema.String,
  timestamp: OptionalTimestamp
}).annotations({ identifier: "Answer", ...preserving })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Gap = Schema.Struct({
  id: Schema.String,
  field: Schema.String,
  description: Schema.String,
  blocking: Schema.Boolean,
  suggested_default: Schema.String,
  why_needed: Schema.String,
  round: NonNegativeInt,
  resolved: Schema.Boolean,
  resolution: Schema.String
}).annotations({ identifier: "Gap", ...preserving })

/**
 * @since 0.1.0
 * @category schemas
 */
export const ConflictOption = Schema.Struct({
  option: Schema.String,
  description: Schema.String,
  tradeoffs: Schema.String,
  recommendation: Schema.String
}).annotations({ identifier: "ConflictOption", ...preserving })

/**
 * `chosen` is the index of the chosen option, -1 while unresolved.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Conflict = Schema.Struct({
  id: Schema.String,
  between: Schema.Tuple(Schema.String, Schema.String),
  description: Schema.String,
  impact: Schema.String,
  options: Schema.Array(ConflictOption),
  chosen: Schema.Int.pipe(Schema.greaterThanOrEqualTo(-1))
}).annotations({ identifier: "Conflict", ...preserving })

/**
 * One interview session, as one line of `sessions.jsonl`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const InterviewSession = Schema.Struct({
  id: SessionId,
  profile: Profile,
  created_at: Timestamp,
  updated_at: Timestamp,
  completed_at: OptionalTimestamp,
  stage: Stage,
  rounds_completed: NonNegativeInt,
  answers: Schema.Array(Answer),
  gaps: Schema.Array(Gap),
  conflicts: Schema.Array(Conflict),
  raw_notes: Schema.String
}).annotations({ identifier: "InterviewSession", ...preserving })

/**
 * @since 0.1.0
 * @category models
 */
export interface InterviewSession extends Schema.Schema.Type<typeof InterviewSession> {}

/**
 * @since 0.1.0
 * @category models
 */
export type Answer = typeof Answer.Type
/**
 * @since 0.1.0
 * @category models
 */
export type Gap = typeof Gap.Type
/**
 * @since 0.1.0
 * @category models
 */
export type Conflict = typeof Conflict.Type

const decodeUnknown = Schema.decodeUnknownEither(InterviewSession, { errors: "all" })
const encodeEither = Schema.encodeEither(InterviewSession)
const validateEither = Schema.validateEither(InterviewSession, { errors: "all" })

/**
 * Writes JSON the way the original tool (Gleam's `json` module) does: compact,
 * and `confidence` always as a float (`1.0`, not `1`), which its decoder
 * requires. Everything else is `JSON.stringify`'s own output.
 */
const writeJson = (value: unknown, asFloat: boolean): string => {
  if (typeof value === "number") {
    return asFloat && Number.isInteger(value) && Math.abs(value) < 1e21 ? value.toFixed(1) : JSON.stringify(value)
  }
  if (Array.isArray(value)) {
    return `[${value.map((item) => writeJson(item, false)).join(",")}]`
  }
  if (typeof value === "object" && value !== null) {
    const parts: Array<string> = []
    for (const [key, item] of Object.entries(value)) {
      if (item !== undefined) parts.push(`${JSON.stringify(key)}:${writeJson(item, key === "confidence")}`)
    }
    return `{${parts.join(",")}}`
  }
  return JSON.stringify(value)
}

/**
 * Decodes one line's text. The failure is a one-line description of every
 * problem found.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeLine = (line: string): Either.Either<InterviewSession, string> => {
  let json: unknown
  try {
    json = JSON.parse(line)
  } catch (error) {
    return Either.left(`not JSON: ${(error as Error).message}`)
  }
  return Either.mapLeft(decodeUnknown(json), (error) => oneLine(error))
}

/**
 * Encodes a session as one line of JSON text (without the newline), keys in
 * the order of the decoded input, unknown keys included, `profile`, `stage`
 * and `perspective` lowercase.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeLine = (session: InterviewSession): Either.Either<string, string> =>
  Either.flatMap(
    Either.mapLeft(validateEither(session), oneLine),
    (valid) => Either.map(Either.mapLeft(encodeEither(valid), oneLine), (encoded) => writeJson(encoded, false))
  )

const oneLine = (error: ParseResult.ParseError): string =>
  ParseResult.ArrayFormatter.formatErrorSync(error)
    .map((issue) => `${issue.path.length === 0 ? "" : `${issue.path.join(".")}: `}${issue.message}`)
    .join("; ")

/**
 * Decodes a value (for instance parsed JSON from a user) into a session.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeUnknownSession = (input: unknown): Either.Either<InterviewSession, string> =>
  Either.mapLeft(decodeUnknown(input), oneLine)

/**
 * The limits a store puts on what it saves.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreLimits {
  /** Longest id, at most `MAX_ID_LENGTH`. */
  readonly maxIdLength: number
  /** Most bytes of a session's JSON text (UTF-8). */
  readonly maxBytes: number
}

/**
 * A session as a store saves it: validated against the schema and the
 * limits, encoded as one line of JSON text (`encodeLine`) and as its UTF-8
 * bytes. Every `SessionStorage` implementation saves through this, so they
 * refuse and write the same things.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeForStore = (
  session: InterviewSession,
  limits: StoreLimits
): Either.Either<{ readonly id: string; readonly text: string; readonly bytes: Uint8Array }, InvalidSession> => {
  const id = typeof session?.id === "string" ? session.id : undefined
  const invalid = (message: string) => Either.left(new InvalidSession({ id, message }))
  if (id !== undefined && id.length > limits.maxIdLength) {
    return invalid(`the id has ${id.length} characters, more than the limit of ${limits.maxIdLength}`)
  }
  const encoded = encodeLine(session)
  if (Either.isLeft(encoded)) return invalid(encoded.left)
  const bytes = textEncoder.encode(encoded.right)
  if (bytes.length > limits.maxBytes) {
    return invalid(`the session takes ${bytes.length} bytes, more than the line limit of ${limits.maxBytes}`)
  }
  return Either.right({ id: session.id, text: encoded.right, bytes })
}

const textEncoder = new TextEncoder()
