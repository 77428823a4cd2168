import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import { AtomicFile, type AtomicFileError } from "@intent/atomic-file"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { encodeForStore, type InterviewSession, MAX_ID_LENGTH } from "../InterviewSession.js"
import type { CompactionReport, IntegrityReport } from "../SessionStorage.js"
import { SessionStorageConfig } from "../SessionStorage.js"
import { CorruptStore, type LineProblem, SessionNotFound, StorageFailure } from "../SessionStorageError.js"
import { classify, encodeText, type Entry, makeLineSplitter, type RawLine, tombstoneLine } from "./lines.js"

const MiB = 1024 * 1024
const READ_CHUNK = 64 * 1024
/** corrupt lines remembered for reports and `CorruptStore`; all are counted */
const MAX_PROBLEMS_KEPT = 1000
/** in `check()`: ids with several lines listed, and line numbers listed for each */
const MAX_DUPLICATES_LISTED = 100
const MAX_LINES_LISTED = 10

/** Where the last saved line of a session is. */
interface Location {
  readonly offset: number
  readonly length: number
  readonly line: number
}

/**
 * What this process knows of the file: every complete line up to
 * `committedBytes`, folded into the live sessions (in order of last save)
 * and counts. Only bytes appended since are read on the next refresh; a new
 * inode (a compaction) or a shorter file starts over. The final line without
 * a newline, if any, is classified again at every refresh (`tail`).
 */
interface State {
  exists: boolean
  dev: number
  ino: number | undefined
  committedBytes: number
  committedLines: number
  live: Map<string, Location>
  dead: number
  corrupt: Array<LineProblem>
  corruptCount: number
  tail: Entry | undefined
  warnedTailOffset: number
}

const emptyState = (): State => ({
  exists: false,
  dev: 0,
  ino: undefined,
  committedBytes: 0,
  committedLines: 0,
  live: new Map(),
  dead: 0,
  corrupt: [],
  corruptCount: 0,
  tail: undefined,
  warnedTailOffset: -1
})

const problemOf = (entry: Entry & { readonly problem: string }): LineProblem => ({
  line: entry.line.number,
  offset: entry.line.offset,
  problem: entry.problem
})

/** Folds one classified line into the live sessions. */
const fold = (live: Map<string, Location>, entry: Entry): "dead" | "live" | "other" => {
  const location = { offset: entry.line.offset, length: entry.line.length, line: entry.line.number }
  switch (entry._tag) {
    case "Record": {
      const superseded = live.delete(entry.id)
      live.set(entry.id, location)
      return superseded ? "dead" : "live"
    }
    case "Tombstone":
      live.delete(entry.id)
      return "dead"
    default:
      return "other"
  }
}

/** Raised inside `update` to leave the file alone. */
class NothingToCompact extends Data.TaggedError("NothingToCompact") {}

export const make = Effect.gen(function*() {
  const options = yield* SessionStorageConfig
  const atomic = yield* AtomicFile.AtomicFile
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path

  const file = path.resolve(options.path)
  const rejectedFile = `${file}.rejected`
  const maxLineBytes = options.maxLineBytes ?? MiB
  const maxIdLength = Math.min(options.maxIdLength ?? MAX_ID_LENGTH, MAX_ID_LENGTH)
  const maxFileBytes = options.maxFileBytes ?? 256 * MiB
  const durability = options.durability ?? "full"
  const compactThreshold = options.compactThreshold ?? 1000
  const strict = options.strict ?? false
  const lockTimeout = options.lockTimeout === undefined ? {} : { lockTimeout: options.lockTimeout }

  const failure = (operation: string) => (cause: AtomicFileError.AtomicFileError | PlatformError) =>
    new StorageFailure({ operation, path: file, cause })

  const classifyLine = (line: RawLine) => classify(line, maxLineBytes, maxIdLength)

  // -- reading ---------------------------------------------------------------

  /** Opens the store for reading in the scope; `None` when it does not exist. */
  const openForRead = (operation: string) =>
    fs.open(file, { flag: "r" }).pipe(
      Effect.map(Option.some),
      Effect.catchAll((error) =>
        error._tag === "SystemError" && error.reason === "NotFound"
          ? Effect.succeed(Option.none<FileSystem.File>())
          : Effect.fail(failure(operation)(error))
      )
    )

  /** Feeds bytes [from, to) of `handle` to `onChunk`, 64 KiB at a time. */
  const readRange = (
    handle: FileSystem.File,
    from: number,
    to: number,
    onChunk: (chunk: Uint8Array) => void
  ): Effect.Effect<void, PlatformError> =>
    Effect.gen(function*() {
      let position = from
      while (position < to) {
        yield* handle.seek(position, "start")
        const chunk = yield* handle.readAlloc(Math.min(READ_CHUNK, to - position))
        if (Option.isNone(chunk)) return
        onChunk(chunk.value)
        position += chunk.value.length
      }
    })

  const readLineAt = (handle: FileSystem.File, location: Location) =>
    Effect.gen(function*() {
      const bytes = new Uint8Array(location.length)
      let filled = 0
      yield* readRange(handle, location.offset, location.offset + location.length, (chunk) => {
        bytes.set(chunk, filled)
        filled += chunk.length
      })
      return bytes.subarray(0, filled)
    })

  const state = emptyState()
  const stateLock = yield* Effect.makeSemaphore(1)

  const refresh = (handle: FileSystem.File) =>
    Effect.gen(function*() {
      const info = yield* handle.stat
      const ino = Option.getOrUndefined(info.ino)
      const size = Number(info.size)
      if (!state.exists || state.dev !== info.dev || state.ino !== ino || size < state.committedBytes) {
        Object.assign(state, emptyState(), { exists: true, dev: info.dev, ino })
      }
      const splitter = makeLineSplitter(maxLineBytes, state.committedBytes, state.committedLines)
      const found: Array<LineProblem> = []
      const apply = (line: RawLine) => {
        const entry = classifyLine(line)
        if (fold(state.live, entry) === "dead") state.dead++
        if (entry._tag === "Corrupt") {
          state.corruptCount++
          if (state.corrupt.length < MAX_PROBLEMS_KEPT) state.corrupt.push(problemOf(entry))
          found.push(problemOf(entry))
        }
        state.committedBytes = line.offset + line.length + 1
        state.committedLines = line.number
      }
      yield* readRange(handle, state.committedBytes, size, (chunk) => splitter.push(chunk).forEach(apply))
      const rest = splitter.end()[0]
      state.tail = rest === undefined ? undefined : classifyLine(rest)
      for (const problem of found) {
        yield* Effect.logWarning(`${file}: line ${problem.line} is not a session and is ignored: ${problem.problem}`)
      }
      if (state.tail?._tag === "Torn" && state.warnedTailOffset !== state.tail.line.offset) {
        state.warnedTailOffset = state.tail.line.offset
        yield* Effect.logWarning(
          `${file}: the final line ${state.tail.line.number} is a torn fragment of an interrupted write and is ignored`
        )
      }
    })

  const problemsOf = (current: State): ReadonlyArray<LineProblem> => [
    ...current.corrupt,
    ...(current.tail?._tag === "Torn" ? [problemOf(current.tail)] : [])
  ]

  /** The live sessions in order of last save, with the final unterminated line applied. */
  const liveView = (current: State): Map<string, Location> => {
    if (current.tail === undefined || (current.tail._tag !== "Record" && current.tail._tag !== "Tombstone")) {
      return current.live
    }
    const view = new Map(current.live)
    fold(view, current.tail)
    return view
  }

  /**
   * Runs `f` on the refreshed state and the open file, one fiber at a time.
   * With `strict`, a store with lines that are not sessions fails instead.
   */
  const withState = <A, E>(
    operation: string,
    f: (current: State, handle: Option.Option<FileSystem.File>) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | CorruptStore | StorageFailure> =>
    stateLock.withPermits(1)(Effect.scoped(Effect.gen(function*() {
      const handle = yield* openForRead(operation)
      if (Option.isNone(handle)) {
        Object.assign(state, emptyState())
      } else {
        yield* Effect.mapError(refresh(handle.value), failure(operation))
      }
      const problems = problemsOf(state)
      if (strict && problems.length > 0) {
        return yield* Effect.fail(new CorruptStore({ path: file, problems }))
      }
      return yield* f(state, handle)
    })))

  // -- writing ---------------------------------------------------------------

  const encodeForSave = (session: InterviewSession) =>
    Effect.map(encodeForStore(session, { maxIdLength, maxBytes: maxLineBytes }), ({ bytes, id }) => ({ id, bytes }))

  /** Splits and classifies a whole file held in memory. */
  const scanAll = (content: Uint8Array): Array<Entry> => {
    const splitter = makeLineSplitter(maxLineBytes)
    return [...splitter.push(content), ...splitter.end()].map(classifyLine)
  }

  /**
   * The compact form of `content`, with one change applied: each live
   * session's last line verbatim, one per line, in order of last save.
   * Corrupt lines and a torn fragment go to the sidecar file first (they are
   * never destroyed). Returns the content unchanged when it is compact and
   * the change changes nothing.
   */
  const rewrite = (
    operation: string,
    change: { readonly upsert?: { readonly id: string; readonly bytes: Uint8Array }; readonly remove?: string },
    report: { rewritten: boolean; linesBefore: number; linesAfter: number; rejected: number }
  ) =>
  (current: Option.Option<Uint8Array>) =>
    Effect.gen(function*() {
      const content = Option.getOrElse(current, () => new Uint8Array(0))
      const entries = scanAll(content)
      const live = new Map<string, Uint8Array>()
      const rejected: Array<Entry & { readonly problem: string }> = []
      let untidy = false
      for (const entry of entries) {
        const bytes = content.subarray(entry.line.offset, entry.line.offset + entry.line.length)
        switch (entry._tag) {
          case "Record":
            if (live.delete(entry.id)) untidy = true
            live.set(entry.id, bytes)
            break
          case "Tombstone":
            live.delete(entry.id)
            untidy = true
            break
          case "Blank":
            untidy = true
            break
          case "Corrupt":
          case "Torn":
            rejected.push(entry)
        }
      }
      if (change.remove !== undefined) {
        untidy = live.delete(change.remove) || untidy
      }
      if (change.upsert !== undefined) {
        live.delete(change.upsert.id)
        live.set(change.upsert.id, change.upsert.bytes)
        untidy = true
      }
      report.linesBefore = entries.length
      report.linesAfter = live.size
      if (!untidy && rejected.length === 0) {
        if (Option.isNone(current)) return yield* Effect.fail(new NothingToCompact())
        return content
      }
      if (rejected.length > 0) {
        if (strict) return yield* Effect.fail(new CorruptStore({ path: file, problems: rejected.map(problemOf) }))
        for (const entry of rejected) {
          yield* Effect.mapError(
            atomic.append(
              rejectedFile,
              content.subarray(entry.line.offset, entry.line.offset + entry.line.length),
              { durability, ...lockTimeout }
            ),
            failure(operation)
          )
        }
        report.rejected = rejected.length
      }
      report.rewritten = true
      let size = 0
      for (const bytes of live.values()) size += bytes.length + 1
      const out = new Uint8Array(size)
      let at = 0
      for (const bytes of live.values()) {
        out.set(bytes, at)
        out[at + bytes.length] = 0x0a
        at += bytes.length + 1
      }
      return out
    })

  const rewriteFile = (
    operation: string,
    change: Parameters<typeof rewrite>[1]
  ): Effect.Effect<CompactionReport, CorruptStore | StorageFailure> => {
    const report = { rewritten: false, linesBefore: 0, linesAfter: 0, rejected: 0 }
    return atomic.update(file, rewrite(operation, change, report), {
      durability,
      maxBytes: maxFileBytes,
      ...lockTimeout
    }).pipe(
      Effect.map((): CompactionReport => ({ ...report })),
      Effect.catchTag("NothingToCompact", () => Effect.succeed<CompactionReport>({ ...report, rewritten: false })),
      Effect.catchIf(
        (error): error is Exclude<typeof error, CorruptStore | StorageFailure> =>
          error._tag !== "CorruptStore" && error._tag !== "StorageFailure",
        (error) => Effect.fail(failure(operation)(error))
      )
    )
  }

  const compact = () => rewriteFile("compact", {})

  /** After an append: compact once dead lines pass the threshold and outnumber live ones. */
  const compactIfDue = (operation: string) =>
    compactThreshold === false
      ? Effect.void
      : Effect.flatMap(
        withState(operation, (current) =>
          Effect.succeed(current.dead >= compactThreshold && current.dead >= current.live.size)),
        (due) =>
          due ? Effect.asVoid(compact()) : Effect.void
      )

  /**
   * A last line without a newline that is not a session or a removal is the
   * fragment of a save that a crash tore: `append` moves it to the sidecar
   * (durably, before it cuts it from the file) instead of terminating it into
   * a corrupt line. One that parses is a complete line of the original tool.
   */
  const tornTail = {
    sidecar: rejectedFile,
    isTorn: (fragment: Uint8Array) =>
      classifyLine({
        number: 0,
        offset: 0,
        length: fragment.length,
        terminated: false,
        bytes: fragment.length <= maxLineBytes ? fragment : undefined
      })._tag === "Torn"
  }

  const appendLine = (operation: string, bytes: Uint8Array) =>
    Effect.zipRight(
      Effect.mapError(atomic.append(file, bytes, { durability, tornTail, ...lockTimeout }), failure(operation)),
      compactIfDue(operation)
    )

  const save = (session: InterviewSession) =>
    Effect.gen(function*() {
      const line = yield* encodeForSave(session)
      if (strict) yield* withState("save", () => Effect.void)
      if (options.compactEverySave) {
        yield* rewriteFile("save", { upsert: line })
      } else {
        yield* appendLine("save", line.bytes)
      }
    })

  const remove = (id: string) =>
    Effect.gen(function*() {
      const present = yield* withState("remove", (current) => Effect.succeed(liveView(current).has(id)))
      if (!present) return yield* Effect.fail(new SessionNotFound({ path: file, id }))
      if (options.compactEverySave) {
        yield* rewriteFile("remove", { remove: id })
      } else {
        yield* appendLine("remove", encodeText(tombstoneLine(id)))
      }
    })

  const decodeAt = (handle: FileSystem.File, location: Location) =>
    Effect.flatMap(readLineAt(handle, location), (bytes) => {
      const entry = classifyLine({
        number: location.line,
        offset: location.offset,
        length: bytes.length,
        terminated: true,
        bytes
      })
      return entry._tag === "Record"
        ? Effect.succeed(entry.session)
        : Effect.dieMessage(`${file}: line ${location.line} changed under the reader`)
    })

  const get = (id: string) =>
    withState("get", (current, handle): Effect.Effect<InterviewSession, SessionNotFound | StorageFailure> => {
      const location = liveView(current).get(id)
      if (location === undefined || Option.isNone(handle)) {
        return Effect.fail(new SessionNotFound({ path: file, id }))
      }
      return Effect.mapError(decodeAt(handle.value, location), failure("get"))
    })

  /**
   * One pass over the file, keeping the lines that hold a live session: the
   * live offsets are taken from the refreshed state, then the file is read in
   * chunks through the same descriptor.
   */
  const stream = (): Stream.Stream<InterviewSession, CorruptStore | StorageFailure> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const handle = yield* openForRead("stream")
      if (Option.isNone(handle)) return Stream.empty
      const snapshot = yield* withState("stream", (current) => {
        const view = liveView(current)
        const end = current.tail === undefined
          ? current.committedBytes
          : current.tail.line.offset + current.tail.line.length
        return Effect.succeed({ offsets: new Set([...view.values()].map((location) => location.offset)), end })
      })
      const reader = handle.value
      const splitter = makeLineSplitter(maxLineBytes)
      const pick = (lines: ReadonlyArray<RawLine>) =>
        lines.flatMap((line) => {
          if (!snapshot.offsets.has(line.offset)) return []
          const entry = classifyLine({ ...line, terminated: true })
          return entry._tag === "Record" ? [entry.session] : []
        })
      const chunks = Stream.paginateEffect(0, (position: number) =>
        position >= snapshot.end
          ? Effect.succeed([new Uint8Array(0), Option.none<number>()] as const)
          : Effect.map(
            Effect.zipRight(
              reader.seek(position, "start"),
              reader.readAlloc(Math.min(READ_CHUNK, snapshot.end - position))
            ),
            (chunk) =>
              Option.match(chunk, {
                onNone: () => [new Uint8Array(0), Option.none<number>()] as const,
                onSome: (bytes) => [bytes, Option.some(position + bytes.length)] as const
              })
          ))
      return chunks.pipe(
        Stream.mapError(failure("stream")),
        Stream.mapConcat((chunk) => pick(splitter.push(chunk))),
        Stream.concat(Stream.suspend(() => Stream.fromIterable(pick(splitter.end()))))
      )
    }))

  const list = () => Effect.map(Stream.runCollect(stream()), (chunk) => Array.from(chunk))

  const countLines = (target: string) =>
    Effect.scoped(Effect.gen(function*() {
      const handle = yield* fs.open(target, { flag: "r" }).pipe(
        Effect.map(Option.some),
        Effect.catchAll((error) =>
          error._tag === "SystemError" && error.reason === "NotFound"
            ? Effect.succeed(Option.none<FileSystem.File>())
            : Effect.fail(error)
        )
      )
      if (Option.isNone(handle)) return 0
      const size = Number((yield* handle.value.stat).size)
      let lines = 0
      yield* readRange(handle.value, 0, size, (chunk) => {
        for (const byte of chunk) if (byte === 0x0a) lines++
      })
      return lines
    }))

  const check = (): Effect.Effect<IntegrityReport, StorageFailure> =>
    Effect.scoped(Effect.gen(function*() {
      const handle = yield* openForRead("check")
      const rejected = yield* Effect.mapError(countLines(rejectedFile), failure("check"))
      const report = {
        path: file,
        exists: Option.isSome(handle),
        bytes: 0,
        lines: 0,
        sessions: 0,
        records: 0,
        superseded: 0,
        removals: 0,
        blank: 0,
        corrupt: [] as Array<LineProblem>,
        torn: Option.none<LineProblem>(),
        duplicates: [] as Array<{ id: string; count: number; lines: Array<number> }>,
        rejected,
        ok: true
      }
      if (Option.isNone(handle)) return report
      const size = Number((yield* Effect.mapError(handle.value.stat, failure("check"))).size)
      const live = new Map<string, Location>()
      const linesOf = new Map<string, { count: number; lines: Array<number> }>()
      const splitter = makeLineSplitter(maxLineBytes)
      const visit = (line: RawLine) => {
        const entry = classifyLine(line)
        report.lines++
        fold(live, entry)
        switch (entry._tag) {
          case "Record": {
            report.records++
            // the count, and only the first few line numbers of each id
            const seen = linesOf.get(entry.id)
            if (seen === undefined) {
              linesOf.set(entry.id, { count: 1, lines: [line.number] })
            } else {
              seen.count++
              if (seen.lines.length < MAX_LINES_LISTED) seen.lines.push(line.number)
            }
            break
          }
          case "Tombstone":
            report.removals++
            break
          case "Blank":
            report.blank++
            break
          case "Corrupt":
            report.corrupt.push(problemOf(entry))
            break
          case "Torn":
            report.torn = Option.some(problemOf(entry))
        }
      }
      yield* Effect.mapError(
        readRange(handle.value, 0, size, (chunk) => splitter.push(chunk).forEach(visit)),
        failure("check")
      )
      splitter.end().forEach(visit)
      report.bytes = size
      report.sessions = live.size
      for (const [id, { count, lines }] of linesOf) {
        if (count > 1) {
          report.superseded += count - 1
          if (report.duplicates.length < MAX_DUPLICATES_LISTED) report.duplicates.push({ id, count, lines })
        }
      }
      report.ok = report.corrupt.length === 0 && Option.isNone(report.torn)
      return report
    }))

  return { path: file, save, get, list, stream, remove, compact, check } as const
})
