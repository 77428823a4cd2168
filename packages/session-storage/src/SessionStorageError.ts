/**
 * Errors of `SessionStorage`.
 *
 * @since 0.1.0
 */
import type { PlatformError } from "@effect/platform/Error"
import { AtomicFileError } from "@intent/atomic-file"
import * as Data from "effect/Data"

/**
 * No session with this id is in the store.
 *
 * @since 0.1.0
 * @category errors
 */
export class SessionNotFound extends Data.TaggedError("SessionNotFound")<{
  readonly path: string
  readonly id: string
}> {}

/**
 * The session given to `save` breaks the schema or a limit (id length, line
 * size). Nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSession extends Data.TaggedError("InvalidSession")<{
  readonly id: string | undefined
  readonly message: string
}> {}

/**
 * One line of the store that is not a session: it does not parse, breaks the
 * schema or a limit, or is a torn final fragment.
 *
 * @since 0.1.0
 * @category models
 */
export interface LineProblem {
  /** 1-based line number */
  readonly line: number
  /** byte offset of the line in the file */
  readonly offset: number
  readonly problem: string
}

/**
 * With `strict: true`, the store holds lines that are not sessions. Nothing
 * was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class CorruptStore extends Data.TaggedError("CorruptStore")<{
  readonly path: string
  readonly problems: ReadonlyArray<LineProblem>
}> {}

/**
 * A failure of a database under a store (the shape of `@effect/sql`'s
 * `SqlError`, and of its `MigrationError`, named here so that this package
 * does not depend on `@effect/sql`).
 *
 * @since 0.1.0
 * @category models
 */
export interface DatabaseError {
  readonly _tag: "SqlError" | "MigrationError"
  readonly message: string
  readonly cause?: unknown
}

/**
 * The file system or database failed under the store; `cause` is the
 * underlying error (an `AtomicFileError`, which says the state of the file,
 * a `PlatformError` of a read, or a `DatabaseError`; a failed database
 * statement changed nothing).
 *
 * @since 0.1.0
 * @category errors
 */
export class StorageFailure extends Data.TaggedError("StorageFailure")<{
  readonly operation: string
  readonly path: string
  readonly cause: AtomicFileError.AtomicFileError | PlatformError | DatabaseError
}> {
  override get message(): string {
    const cause = this.cause
    switch (cause._tag) {
      case "SystemError":
      case "BadArgument":
        return `${this.operation} ${JSON.stringify(this.path)}: ${cause.message}`
      case "SqlError":
      case "MigrationError":
        return `${this.operation} ${JSON.stringify(this.path)}: ${cause.message}${
          cause.cause instanceof Error ? `: ${cause.cause.message}` : ""
        }`
      default:
        return AtomicFileError.formatError(cause)
    }
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export type SessionStorageError = SessionNotFound | InvalidSession | CorruptStore | StorageFailure

/**
 * One human-readable line for any error of the store.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatError = (error: SessionStorageError): string => {
  switch (error._tag) {
    case "SessionNotFound":
      return `no session ${JSON.stringify(error.id)} in ${JSON.stringify(error.path)}`
    case "InvalidSession":
      return `invalid session${
        error.id === undefined ? "" : ` ${JSON.stringify(error.id)}`
      }: ${error.message}; nothing was saved`
    case "CorruptStore":
      return `${JSON.stringify(error.path)} has ${error.problems.length} line(s) that are not sessions (first: line ${
        error.problems[0]?.line
      }: ${error.problems[0]?.problem}); nothing was written`
    case "StorageFailure":
      return error.message
  }
}
