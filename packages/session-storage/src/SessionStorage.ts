/**
 * `SessionStorage`: interview sessions in a JSON Lines file
 * (`.intent/sessions.jsonl`), saved by appending under a cross-process lock
 * so that no update is ever lost, and compacted atomically.
 *
 * @since 0.1.0
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Path from "@effect/platform/Path"
import { AtomicFile } from "@intent/atomic-file"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import * as internal from "./internal/sessionStorage.js"
import type { InterviewSession } from "./InterviewSession.js"
import type {
  CorruptStore,
  InvalidSession,
  LineProblem,
  SessionNotFound,
  StorageFailure
} from "./SessionStorageError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface SessionStorageOptions {
  /** The store's file. Relative paths are resolved against the working directory. */
  readonly path: string
  /** Durability of each save, as `AtomicFile`'s. Default `"full"`. */
  readonly durability?: AtomicFile.Durability
  /** Longest line read or written, in bytes. Default 1 MiB. */
  readonly maxLineBytes?: number
  /** Longest id, at most 256 (the schema's limit). Default 256. */
  readonly maxIdLength?: number
  /** Largest file a compaction reads into memory. Default 256 MiB. */
  readonly maxFileBytes?: number
  /**
   * Compact after a save once this many lines are dead (superseded or
   * removed) and they outnumber the live sessions. `false`: only on
   * `compact()`. Default 1000.
   */
  readonly compactThreshold?: number | false
  /**
   * Rewrite the file at every save and remove, so that it is always compact
   * (one line per session, as the original tool kept it): for files kept in
   * git. Each save then costs a rewrite of the whole file. Default `false`.
   */
  readonly compactEverySave?: boolean
  /** Fail with `CorruptStore` instead of reporting lines that are not sessions. Default `false`. */
  readonly strict?: boolean
  /** How long to wait for the cross-process lock. Default 30 seconds. */
  readonly lockTimeout?: Duration.DurationInput
}

/**
 * The integrity report of `check()`.
 *
 * @since 0.1.0
 * @category models
 */
export interface IntegrityReport {
  readonly path: string
  readonly exists: boolean
  readonly bytes: number
  readonly lines: number
  /** distinct live sessions */
  readonly sessions: number
  /** lines that hold a session, superseded ones included */
  readonly records: number
  /** record lines superseded by a later save of the same id */
  readonly superseded: number
  /** removal lines */
  readonly removals: number
  readonly blank: number
  /** lines that are not sessions (do not parse, break the schema or a limit) */
  readonly corrupt: ReadonlyArray<LineProblem>
  /** a final line without a newline that does not parse: an interrupted write */
  readonly torn: Option.Option<LineProblem>
  /**
   * ids saved on more than one line: how many lines, and the first ten line
   * numbers (at most 100 ids listed)
   */
  readonly duplicates: ReadonlyArray<
    { readonly id: string; readonly count: number; readonly lines: ReadonlyArray<number> }
  >
  /** lines kept in the sidecar file `<path>.rejected` by earlier compactions */
  readonly rejected: number
  /** no corrupt line and no torn fragment */
  readonly ok: boolean
}

/**
 * What `compact()` did.
 *
 * @since 0.1.0
 * @category models
 */
export interface CompactionReport {
  /** false when the file was already compact: nothing was written */
  readonly rewritten: boolean
  readonly linesBefore: number
  readonly linesAfter: number
  /** corrupt lines and torn fragments moved to `<path>.rejected` */
  readonly rejected: number
  /** why nothing was done, when the store has nothing to compact by design (a database) */
  readonly note?: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SessionStorageService {
  /** The absolute path of the store's file. */
  readonly path: string
  /**
   * Saves a session: replaces the session with the same id, or adds it. It
   * is appended as one line under the cross-process lock, so its cost does
   * not grow with the file, and durable when this returns (durability
   * `"full"`).
   */
  readonly save: (session: InterviewSession) => Effect.Effect<void, InvalidSession | CorruptStore | StorageFailure>
  /** The last saved version of the session `id`. */
  readonly get: (id: string) => Effect.Effect<InterviewSession, SessionNotFound | CorruptStore | StorageFailure>
  /** Every session, once each, in the order of their last save. */
  readonly list: () => Effect.Effect<ReadonlyArray<InterviewSession>, CorruptStore | StorageFailure>
  /** The sessions of `list`, read from the file as they are pulled. */
  readonly stream: () => Stream.Stream<InterviewSession, CorruptStore | StorageFailure>
  /** Removes the session `id` (a removal line, applied at compaction). */
  readonly remove: (id: string) => Effect.Effect<void, SessionNotFound | CorruptStore | StorageFailure>
  /**
   * Rewrites the file to one line per session in the order of last save;
   * corrupt lines and a torn fragment move to `<path>.rejected`. Writes
   * nothing when the file is already compact.
   */
  readonly compact: () => Effect.Effect<CompactionReport, CorruptStore | StorageFailure>
  /** Reads the whole file and reports what is in it. */
  readonly check: () => Effect.Effect<IntegrityReport, StorageFailure>
}

/**
 * The options of the store a layer builds.
 *
 * @since 0.1.0
 * @category config
 */
export class SessionStorageConfig extends Context.Tag("@intent/session-storage/SessionStorageConfig")<
  SessionStorageConfig,
  SessionStorageOptions
>() {}

/**
 * The default file, relative to the working directory.
 *
 * @since 0.1.0
 * @category config
 */
export const DEFAULT_PATH = ".intent/sessions.jsonl"

/**
 * The store's options from `Config`: the path from `INTENT_SESSIONS_FILE`,
 * default (also when it is empty) `.intent/sessions.jsonl`.
 *
 * @since 0.1.0
 * @category config
 */
export const configFromEnv: Layer.Layer<SessionStorageConfig> = Layer.effect(
  SessionStorageConfig,
  Effect.map(
    Effect.orDie(Config.option(Config.string("INTENT_SESSIONS_FILE"))),
    // an empty variable counts as unset
    (path) => ({ path: Option.getOrElse(Option.filter(path, (value) => value.length > 0), () => DEFAULT_PATH) })
  )
)

/**
 * The service. `SessionStorage.Default` reads its path from `Config`
 * (`INTENT_SESSIONS_FILE`) and needs only the platform (`NodeContext.layer`);
 * `DefaultWithoutDependencies` takes `SessionStorageConfig`, `AtomicFile`,
 * `FileSystem` and `Path` from the environment.
 *
 * @since 0.1.0
 * @category services
 */
export class SessionStorage extends Effect.Service<SessionStorage>()("@intent/session-storage/SessionStorage", {
  effect: internal.make,
  dependencies: [AtomicFile.AtomicFile.Default, configFromEnv]
}) {}

// The service built by `make` implements the documented interface.
const _conforms: (service: SessionStorage) => SessionStorageService = (service) => service
void _conforms

/**
 * The store at `options.path`, over the `AtomicFile` (and so the `FileLock`)
 * of the environment: tests swap in other implementations here.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithoutDependencies = (
  options: SessionStorageOptions
): Layer.Layer<SessionStorage, never, AtomicFile.AtomicFile | FileSystem.FileSystem | Path.Path> =>
  SessionStorage.DefaultWithoutDependencies.pipe(Layer.provide(Layer.succeed(SessionStorageConfig, options)))

/**
 * The store at `options.path`; needs only the platform (`NodeContext.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: SessionStorageOptions
): Layer.Layer<SessionStorage, never, FileSystem.FileSystem | Path.Path> =>
  layerWithoutDependencies(options).pipe(Layer.provide(AtomicFile.AtomicFile.Default))
