/**
 * `intent-sessions`: list, show, save, remove, compact and check the
 * sessions of a `SessionStorage` file, and copy them to and from a database
 * (`import`, `export`).
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { NodeStream } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import { InterviewSession, SessionStorage, SessionStorageError } from "@intent/session-storage"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { CommandFailure, type UsageError } from "./internal/runCommand.js"
import { copySessions, databaseLayer, type TransferReport } from "./internal/transfer.js"

const file = Options.text("file").pipe(
  Options.withAlias("f"),
  Options.withDescription(`the store (default: $INTENT_SESSIONS_FILE, else ${SessionStorage.DEFAULT_PATH})`),
  Options.optional
)

/** `--file`, else a non-empty `INTENT_SESSIONS_FILE`, else the default path. */
const storePath = (option: Option.Option<string>) =>
  Option.match(option, {
    onSome: Effect.succeed,
    onNone: () =>
      Effect.map(
        Effect.orElseSucceed(Config.option(Config.string("INTENT_SESSIONS_FILE")), () => Option.none<string>()),
        (env) => Option.getOrElse(Option.filter(env, (value) => value.length > 0), () => SessionStorage.DEFAULT_PATH)
      )
  })

const root = Command.make("intent-sessions", { file }).pipe(
  Command.withDescription("Interview sessions in a JSON Lines file that never loses an update.")
)

/** Runs `f` with the store the `--file` option names. */
const withStore = <A, E>(
  f: (store: SessionStorage.SessionStorage) => Effect.Effect<A, E>
) =>
  Effect.flatMap(
    Effect.flatMap(root, ({ file }) => storePath(file)),
    (path) => Effect.provide(Effect.flatMap(SessionStorage.SessionStorage, f), SessionStorage.layer({ path }))
  )

const pad = (text: string, width: number) => text.length >= width ? text : text + " ".repeat(width - text.length)

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? []
  return rows.map((row) => row.map((cell, column) => pad(cell, widths[column] ?? 0)).join("  ").trimEnd()).join("\n")
}

const list = Command.make(
  "list",
  { json: Options.boolean("json").pipe(Options.withDescription("JSON Lines instead of a table")) },
  ({ json }) =>
    withStore((store) =>
      Effect.gen(function*() {
        const sessions = yield* store.list()
        if (json) {
          for (const session of sessions) {
            yield* Console.log(Either.getOrThrow(InterviewSession.encodeLine(session)))
          }
          return
        }
        yield* Console.log(table([
          ["ID", "PROFILE", "STAGE", "ROUNDS", "UPDATED"],
          ...sessions.map((s) => [s.id, s.profile, s.stage, String(s.rounds_completed), s.updated_at])
        ]))
        yield* Console.log(`${sessions.length} session(s) in ${store.path}`)
      })
    )
).pipe(Command.withDescription("List the sessions, in the order of their last save."))

const get = Command.make(
  "get",
  { id: Args.text({ name: "id" }) },
  ({ id }) =>
    withStore((store) =>
      Effect.flatMap(store.get(id), (session) => Console.log(Either.getOrThrow(InterviewSession.encodeLine(session))))
    )
).pipe(Command.withDescription("Print one session as JSON."))

/**
 * Parses the input of `save`: one JSON object, a JSON array of objects, or
 * JSON Lines. Every record is validated before anything is saved; the first
 * bad one is reported with its line and the field at fault.
 */
const parseSessions = (text: string): Either.Either<Array<InterviewSession.InterviewSession>, string> => {
  const trimmed = text.trim()
  if (trimmed.length === 0) return Either.left("the input holds no session")
  const decode = (value: unknown, where: string) =>
    Either.mapLeft(InterviewSession.decodeUnknownSession(value), (problem) => `${where}: ${problem}`)
  let whole: unknown
  let parsedWhole = false
  try {
    whole = JSON.parse(trimmed)
    parsedWhole = true
  } catch {
    // not one JSON value: JSON Lines below
  }
  if (parsedWhole && Array.isArray(whole)) {
    return Either.all(whole.map((value, index) => decode(value, `record ${index + 1}`)))
  }
  if (parsedWhole && typeof whole === "object" && whole !== null) {
    return Either.map(decode(whole, trimmed.includes("\n") ? "the input" : "line 1"), (session) => [session])
  }
  const sessions: Array<InterviewSession.InterviewSession> = []
  const lines = text.split("\n")
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? ""
    if (line.trim().length === 0) continue
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (error) {
      return Either.left(`line ${index + 1}: not JSON: ${(error as Error).message}`)
    }
    const session = decode(value, `line ${index + 1}`)
    if (Either.isLeft(session)) return Either.left(session.left)
    sessions.push(session.right)
  }
  return Either.right(sessions)
}

/** The most `save` reads: the store's own line limit times a generous count. */
const MAX_INPUT_BYTES = 256 * 1024 * 1024

const readInput = (source: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const failure = (message: string) =>
      new CommandFailure({
        message: `cannot read ${source === "-" ? "standard input" : JSON.stringify(source)}: ${message}`
      })
    if (source !== "-") {
      return yield* Effect.mapError(fs.readFileString(source), (error) => failure(error.message))
    }
    // standard input may be a pipe, a socket or a terminal: read it as a stream
    let size = 0
    return yield* NodeStream.fromReadable<CommandFailure, Uint8Array>(
      () => process.stdin,
      (cause) => failure(cause instanceof Error ? cause.message : String(cause))
    ).pipe(
      Stream.tap((chunk) =>
        (size += chunk.length) > MAX_INPUT_BYTES
          ? Effect.fail(failure(`more than ${MAX_INPUT_BYTES} bytes`))
          : Effect.void
      ),
      Stream.decodeText(),
      Stream.mkString
    )
  })

const save = Command.make(
  "save",
  {
    source: Args.text({ name: "file|-" }).pipe(
      Args.withDescription("a JSON or JSON Lines file of sessions, or - for standard input (default)"),
      Args.withDefault("-")
    )
  },
  ({ source }) =>
    Effect.gen(function*() {
      const text = yield* readInput(source)
      const sessions = parseSessions(text)
      if (Either.isLeft(sessions)) {
        return yield* Effect.fail(new CommandFailure({ message: `invalid input, nothing saved: ${sessions.left}` }))
      }
      yield* withStore((store) =>
        Effect.gen(function*() {
          for (const session of sessions.right) yield* store.save(session)
          yield* Console.log(`saved ${sessions.right.length} session(s) to ${store.path}`)
        })
      )
    })
).pipe(Command.withDescription("Save sessions (added, or replacing those with the same id)."))

const remove = Command.make(
  "remove",
  { id: Args.text({ name: "id" }) },
  ({ id }) => withStore((store) => Effect.zipRight(store.remove(id), Console.log(`removed ${id}`)))
).pipe(Command.withDescription("Remove a session."))

const compact = Command.make(
  "compact",
  {},
  () =>
    withStore((store) =>
      Effect.flatMap(store.compact(), (report) =>
        Console.log(
          report.rewritten
            ? `compacted ${store.path}: ${report.linesBefore} line(s) to ${report.linesAfter}` +
              (report.rejected > 0
                ? `; ${report.rejected} line(s) that are not sessions moved to ${store.path}.rejected`
                : "")
            : `${store.path} is already compact: nothing written${report.note === undefined ? "" : ` (${report.note})`}`
        ))
    )
).pipe(Command.withDescription("Rewrite the file to one line per session."))

const check = Command.make("check", {}, () =>
  withStore((store) =>
    Effect.gen(function*() {
      const report = yield* store.check()
      const lines = [
        `${report.path}: ${report.exists ? `${report.bytes} bytes, ${report.lines} line(s)` : "does not exist yet"}`,
        `sessions: ${report.sessions}; superseded lines: ${report.superseded}; removals: ${report.removals}; blank: ${report.blank}`,
        ...report.corrupt.map((p) => `line ${p.line}: not a session: ${p.problem}`),
        ...Option.toArray(report.torn).map((p) => `line ${p.line}: torn final fragment: ${p.problem}`),
        ...(report.rejected > 0 ? [`${report.rejected} line(s) kept in ${report.path}.rejected`] : []),
        report.ok ? "ok" : "problems found"
      ]
      yield* Console.log(lines.join("\n"))
      if (!report.ok) {
        return yield* Effect.fail(new CommandFailure({ message: `${report.path} has lines that are not sessions` }))
      }
    })
  )).pipe(Command.withDescription("Report on the file's integrity; exit status 1 when it finds problems."))

const databaseUrl = Args.text({ name: "database-url" }).pipe(
  Args.withDescription("postgres://user:password@host:port/database, or sqlite:<file>")
)
const tableName = Options.text("table").pipe(
  Options.withDescription("the sessions table in the database (default intent_sessions)"),
  Options.optional
)

/** One line on a terminal's stderr, rewritten at most every 200 ms; nothing elsewhere. */
const progressLine = (verb: string) => {
  const terminal = process.stderr.isTTY === true
  let shown = 0
  let last = 0
  return {
    update: (report: TransferReport): Effect.Effect<void> =>
      Effect.sync(() => {
        const now = Date.now()
        if (!terminal || now - last < 200) return
        last = now
        shown++
        process.stderr.write(`\r${verb}: ${report.read} read, ${report.saved} saved, ${report.unchanged} unchanged`)
      }),
    clear: Effect.sync(() => {
      if (terminal && shown > 0) process.stderr.write("\r\x1b[K")
    })
  }
}

/**
 * Copies between the file store (`--file`) and the database at `url`, in
 * the direction given, and reports the count.
 */
const transfer = (direction: "import" | "export") => ({ table, url }: { url: string; table: Option.Option<string> }) =>
  Effect.scoped(Effect.gen(function*() {
    const database = databaseLayer(url, Option.getOrUndefined(table))
    if (Either.isLeft(database)) return yield* Effect.fail(database.left)
    const path = yield* Effect.flatMap(root, ({ file }) => storePath(file))
    const open = <E, R>(layer: Layer.Layer<SessionStorage.SessionStorage, E, R>) =>
      Effect.map(Layer.build(layer), Context.get(SessionStorage.SessionStorage))
    const fileStore = yield* open(SessionStorage.layer({ path }))
    const databaseStore = yield* open(database.right)
    const [from, to] = direction === "import" ? [fileStore, databaseStore] : [databaseStore, fileStore]
    const progress = progressLine(direction === "import" ? "importing" : "exporting")
    const report = yield* Effect.ensuring(copySessions(from, to, progress.update), progress.clear)
    yield* Console.log(
      `${
        direction === "import" ? "imported" : "exported"
      } ${report.read} session(s) from ${from.path} into ${to.path}: ` +
        `${report.saved} saved, ${report.unchanged} unchanged`
    )
  }))

const importCommand = Command.make("import", { url: databaseUrl, table: tableName }, transfer("import")).pipe(
  Command.withDescription(
    "Copy the sessions of the file into a database; sessions it already holds unchanged are skipped."
  )
)

const exportCommand = Command.make("export", { url: databaseUrl, table: tableName }, transfer("export")).pipe(
  Command.withDescription(
    "Copy the sessions of a database into the file; sessions it already holds unchanged are skipped."
  )
)

/**
 * The command with its subcommands.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = root.pipe(
  Command.withSubcommands([list, get, save, remove, compact, check, importCommand, exportCommand])
)

/**
 * One line for any failure of the command.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describe = (error: SessionStorageError.SessionStorageError | CommandFailure | UsageError): string =>
  error._tag === "CommandFailure" || error._tag === "UsageError"
    ? error.message
    : SessionStorageError.formatError(error)
