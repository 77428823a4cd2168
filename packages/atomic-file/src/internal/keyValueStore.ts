import * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Path from "@effect/platform/Path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { AtomicFile, type Durability } from "../AtomicFile.js"
import { type AtomicFileError, formatError } from "../AtomicFileError.js"
import { FileLock } from "../FileLock.js"
import { errorCode } from "./errno.js"

/** Names this store keeps beside the keys. None can be a key: `encodeURIComponent` never writes a `#`. */
const LOCK_NAME = "#store"
const CLEARING_NAME = "#clearing"
export const isKeyFile = (name: string) => !name.includes("#")

const ERROR_TAGS = new Set([
  "InvalidInput",
  "TargetResolutionFailure",
  "DirectoryCreationFailure",
  "TempWriteFailure",
  "RenameFailure",
  "DirectorySyncFailure",
  "CleanupFailure",
  "ReadFailure",
  "FileTooLarge",
  "AppendFailure",
  "RemoveFailure",
  "LockTimeout",
  "LockFailure"
])
const isAtomicFileError = (error: unknown): error is AtomicFileError =>
  typeof error === "object" && error !== null && "_tag" in error && ERROR_TAGS.has(String(error._tag))

/** The store's errors stay `PlatformError`s, as `layerFileSystem`'s; the precise error is the `cause`. */
const toPlatformError = (method: string, path: string) => (error: AtomicFileError): PlatformError.PlatformError => {
  const reason = "reason" in error ? error.reason._tag : error._tag === "LockTimeout" ? "TimedOut" : "Unknown"
  return new PlatformError.SystemError({
    module: "KeyValueStore",
    method,
    reason: reason === "NotFound"
      ? "NotFound"
      : reason === "PermissionDenied"
      ? "PermissionDenied"
      : reason === "IsDirectory" || reason === "NotDirectory"
      ? "BadResource"
      : reason === "TimedOut"
      ? "TimedOut"
      : "Unknown",
    pathOrDescriptor: path,
    description: formatError(error),
    cause: error
  })
}

/** Raised inside `update` when the key has no value: nothing is written. */
class Absent extends Data.TaggedError("Absent") {}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export interface StoreOptions {
  readonly durability?: Durability
}

export const make = (
  directory: string,
  options?: StoreOptions
): Effect.Effect<
  KeyValueStore.KeyValueStore,
  PlatformError.PlatformError,
  AtomicFile | FileLock | FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const atomic = yield* AtomicFile
    const lock = yield* FileLock
    const durability = options?.durability ?? "full"
    const lockKey = path.join(directory, LOCK_NAME)
    const clearing = path.join(directory, CLEARING_NAME)
    const guarded = <A, E, R>(self: Effect.Effect<A, E, R>) =>
      Effect.mapError(lock.withLock(lockKey)(self), (error) =>
        isAtomicFileError(error) ? toPlatformError("lock", lockKey)(error) : error as Exclude<E, AtomicFileError>)

    // the same key rules and encoding as `KeyValueStore.layerFileSystem`
    const withKeyPath = <A, E, R>(
      method: string,
      key: string,
      f: (file: string) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | PlatformError.PlatformError, R> =>
      key.length === 0 || key === "." || key === ".."
        ? Effect.fail(
          new PlatformError.BadArgument({
            module: "KeyValueStore",
            method,
            description: "Key must not be empty, . or .."
          })
        )
        : f(path.join(directory, encodeURIComponent(key)))

    const removeKeys = Effect.gen(function*() {
      const names = (yield* fs.readDirectory(directory)).filter(isKeyFile)
      yield* Effect.forEach(
        names,
        (name) =>
          fs.remove(path.join(directory, name), { recursive: true }).pipe(
            Effect.catchAll((error) =>
              errorCode(error) === "ENOENT" ? Effect.void : Effect.fail(error)
            )
          ),
        { concurrency: 8, discard: true }
      )
    })

    /**
     * Removes every key, so that a crash part way through leaves the old keys
     * or (once the store is opened again) none, and the directory always
     * there: a marker is written first, the keys removed, then the marker.
     * Opening a store that holds the marker finishes the clear.
     */
    const clearKeys = Effect.gen(function*() {
      const names = (yield* fs.readDirectory(directory)).filter(isKeyFile)
      if (names.length === 0) return
      yield* Effect.mapError(
        atomic.writeFileString(clearing, "", { durability }),
        toPlatformError("clear", clearing)
      )
      yield* removeKeys
      yield* Effect.mapError(atomic.remove(clearing, { durability }), toPlatformError("clear", clearing))
    })

    if (!(yield* fs.exists(directory))) {
      yield* fs.makeDirectory(directory, { recursive: true })
    }
    // a clear that a crash interrupted is finished; temp files of crashed writers go
    if (yield* fs.exists(clearing)) {
      yield* guarded(Effect.zipRight(
        removeKeys,
        Effect.mapError(atomic.remove(clearing, { durability }), toPlatformError("clear", clearing))
      ))
    }
    yield* Effect.mapError(atomic.cleanupStale(directory), toPlatformError("cleanupStale", directory))

    const readOption = <A>(read: Effect.Effect<A, PlatformError.PlatformError>) =>
      read.pipe(
        Effect.map(Option.some),
        Effect.catchTag("SystemError", (error) =>
          error.reason === "NotFound" ? Effect.succeed(Option.none<A>()) : Effect.fail(error))
      )

    /** `update` under the store's lock; `None` (and nothing written) for a missing key. */
    const modifyBytes = <E, R>(
      method: string,
      file: string,
      f: (value: Uint8Array) => Effect.Effect<Uint8Array, E, R>
    ) =>
      atomic.update(
        file,
        (current): Effect.Effect<Uint8Array, E | Absent, R> =>
          Option.isNone(current) ? Effect.fail(new Absent()) : f(current.value),
        { durability, lockPath: lockKey, createParents: false }
      ).pipe(
        Effect.map(Option.some),
        Effect.catchIf(
          (error): error is Absent =>
            typeof error === "object" && error !== null && "_tag" in error && error._tag === "Absent",
          () => Effect.succeed(Option.none<Uint8Array>())
        ),
        Effect.mapError((error) => isAtomicFileError(error) ? toPlatformError(method, file)(error) : error as E)
      )

    const store = KeyValueStore.make({
      get: (key) => withKeyPath("get", key, (file) => readOption(fs.readFileString(file))),
      getUint8Array: (key) => withKeyPath("getUint8Array", key, (file) => readOption(fs.readFile(file))),
      set: (key, value) =>
        withKeyPath("set", key, (file) =>
          guarded(Effect.mapError(
            typeof value === "string"
              ? atomic.writeFileString(file, value, { durability, createParents: false })
              : atomic.writeFile(file, value, { durability, createParents: false }),
            toPlatformError("set", file)
          ))),
      remove: (key) =>
        withKeyPath("remove", key, (file) =>
          guarded(Effect.mapError(atomic.remove(file, { durability }), toPlatformError("remove", file)))),
      has: (key) =>
        withKeyPath("has", key, (file) =>
          fs.exists(file)),
      clear: guarded(clearKeys),
      size: Effect.map(fs.readDirectory(directory), (names) =>
        names.filter(isKeyFile).length),
      modify: (key, f) =>
        withKeyPath("modify", key, (file) =>
          Effect.map(
            modifyBytes("modify", file, (bytes) => Effect.succeed(encoder.encode(f(decoder.decode(bytes))))),
            Option.map((bytes) => decoder.decode(bytes))
          )),
      modifyUint8Array: (key, f) =>
        withKeyPath("modifyUint8Array", key, (file) =>
          modifyBytes("modifyUint8Array", file, (bytes) =>
            Effect.succeed(f(bytes))))
    })

    /** As the platform's, but `modify` decodes, applies and encodes inside one atomic update. */
    const forSchema = <A, I, R>(schema: Schema.Schema<A, I, R>): KeyValueStore.SchemaStore<A, R> => {
      const json = Schema.parseJson(schema)
      const parse = Schema.decodeUnknown(json)
      const encode = Schema.encode(json)
      const base = store.forSchema(schema)
      return {
        ...base,
        modify: (key, f) =>
          withKeyPath("modify", key, (file) => {
            let result: A | undefined
            return Effect.map(
              modifyBytes("modify", file, (bytes) =>
                Effect.flatMap(parse(decoder.decode(bytes)), (value) => {
                  result = f(value)
                  return Effect.map(encode(result), (text) =>
                    encoder.encode(text))
                })),
              Option.map(() =>
                result as A
              )
            )
          })
      }
    }

    return { ...store, forSchema } satisfies KeyValueStore.KeyValueStore
  })
