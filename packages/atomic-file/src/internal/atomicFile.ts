import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import type * as Stream from "effect/Stream"
import type { WriteOptions } from "../AtomicFile.js"
import type { Operation, WriteError } from "../AtomicFileError.js"
import { cleanupStale } from "./cleanupStale.js"
import { makeKeyedQueue } from "./keyedQueue.js"
import * as Steps from "./writeSteps.js"

const encoder = new TextEncoder()

export const make = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const queue = makeKeyedQueue()

  /**
   * The whole algorithm around one way of filling the temporary file. Calls
   * are ordered per path twice: first by the path as given (taken before any
   * asynchronous step, so in call order), then by the resolved target (so
   * that a link and its destination, written at once, do not race).
   */
  const replace = <E, R>(
    operation: Operation,
    input: string,
    options: WriteOptions | undefined,
    fill: (ctx: Steps.WriteContext, target: Steps.Target, temp: Steps.TempFile) => Effect.Effect<void, E, R>
  ): Effect.Effect<void, WriteError | E, R> => {
    const ctx: Steps.WriteContext = { fs, path, operation }
    const durability = options?.durability ?? "full"
    const steps = (target: Steps.Target) =>
      Effect.scoped(Effect.gen(function*() {
        const temp = yield* Steps.createTempFile(ctx, target, {
          createParents: options?.createParents ?? true,
          durable: durability === "full"
        })
        yield* fill(ctx, target, temp)
        yield* Steps.syncTemp(ctx, target, temp, durability !== "none")
        yield* Steps.applyModeAndOwner(ctx, target, temp, options?.mode)
        yield* Steps.renameTemp(ctx, target, temp)
        if (durability === "full") {
          yield* Steps.syncDirectory(ctx, target)
        }
      }))
    return Effect.flatMap(Steps.validatePath(operation, input), () => {
      const absolute = path.resolve(input)
      return queue.run(absolute)(
        Effect.flatMap(
          Steps.resolveTarget(ctx, absolute, options?.symlinks ?? "follow"),
          (target) => target.path === absolute ? steps(target) : queue.run(target.path)(steps(target))
        )
      )
    })
  }

  const writeFile = (path: string, data: Uint8Array, options?: WriteOptions) =>
    replace("writeFile", path, options, (ctx, target, temp) => Steps.writeTemp(ctx, target, temp, data))

  const writeFileString = (path: string, data: string, options?: WriteOptions) =>
    replace(
      "writeFileString",
      path,
      options,
      (ctx, target, temp) => Steps.writeTemp(ctx, target, temp, encoder.encode(data))
    )

  const writeStream = <E, R>(path: string, stream: Stream.Stream<Uint8Array, E, R>, options?: WriteOptions) =>
    replace("writeStream", path, options, (ctx, target, temp) => Steps.writeTempStream(ctx, target, temp, stream))

  return {
    writeFile,
    writeFileString,
    writeStream,
    cleanupStale: (directory: string) => cleanupStale(fs, path, directory)
  } as const
})
