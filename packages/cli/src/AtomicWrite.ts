/**
 * `atomic-write <file>`: a crash-safe `sponge`. Reads standard input as a
 * stream and replaces `<file>` with it, atomically and durably.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { NodeStream } from "@effect/platform-node"
import { AtomicFile, AtomicFileError } from "@intent/atomic-file"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { UsageError } from "./internal/runCommand.js"

/**
 * Reading standard input failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class StdinFailure extends Data.TaggedError("StdinFailure")<{ readonly cause: unknown }> {
  override get message(): string {
    return `cannot read standard input: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

const file = Args.text({ name: "file" }).pipe(Args.withDescription("the file to replace"))

const mode = Options.text("mode").pipe(
  Options.withDescription("permission bits of the new file, in octal (644); default: keep the old file's"),
  Options.optional
)

const durability = Options.choice("durability", ["full", "file", "none"]).pipe(
  Options.withDescription(
    "full: fsync the file and its directory (default); file: the file only; none: no fsync"
  ),
  Options.withDefault("full" as const)
)

const symlinks = Options.choice("symlinks", ["follow", "replace"]).pipe(
  Options.withDescription("follow: replace the file a link points to (default); replace: replace the link itself"),
  Options.withDefault("follow" as const)
)

const noCreateParents = Options.boolean("no-create-parents").pipe(
  Options.withDescription("fail instead of creating missing parent directories")
)

const parseMode = (text: Option.Option<string>) =>
  Option.match(text, {
    onNone: () => Effect.succeed(undefined),
    onSome: (value) =>
      /^0?[0-7]{3,4}$/.test(value)
        ? Effect.succeed(Number.parseInt(value, 8))
        : Effect.fail(
          new UsageError({ message: `--mode must be octal permission bits like 644, got ${JSON.stringify(value)}` })
        )
  })

const formatBytes = (bytes: number) =>
  bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(0)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/**
 * Standard input as a stream of chunks. When stderr is a terminal, a progress
 * line counts the bytes read (at most five updates a second); otherwise
 * nothing extra is printed.
 */
const stdin = (): Stream.Stream<Uint8Array, StdinFailure> => {
  const source = NodeStream.fromReadable<StdinFailure, Uint8Array>(
    () => process.stdin,
    (cause) => new StdinFailure({ cause })
  )
  if (!process.stderr.isTTY) return source
  let bytes = 0
  let shown = 0
  return source.pipe(
    Stream.tap((chunk) =>
      Effect.sync(() => {
        bytes += chunk.length
        const now = Date.now()
        if (now - shown >= 200) {
          shown = now
          process.stderr.write(`\ratomic-write: ${formatBytes(bytes)} read`)
        }
      })
    ),
    Stream.ensuring(Effect.sync(() => {
      if (shown > 0) process.stderr.write(`\ratomic-write: ${formatBytes(bytes)} read\n`)
    }))
  )
}

/**
 * The command.
 *
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make(
  "atomic-write",
  { file, mode, durability, symlinks, noCreateParents },
  (args) =>
    Effect.gen(function*() {
      const modeBits = yield* parseMode(args.mode)
      const atomic = yield* AtomicFile.AtomicFile
      yield* atomic.writeStream(args.file, stdin(), {
        durability: args.durability,
        symlinks: args.symlinks,
        createParents: !args.noCreateParents,
        ...(modeBits === undefined ? {} : { mode: modeBits })
      })
    }).pipe(Effect.provide(AtomicFile.layerNode))
).pipe(
  Command.withDescription(
    "Replace FILE with standard input, atomically and durably: a reader or a crash sees the old content or the new, never a mix."
  )
)

/**
 * One line for any failure of the command.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describe = (error: AtomicFileError.WriteError | StdinFailure | UsageError): string =>
  error._tag === "StdinFailure" || error._tag === "UsageError" ? error.message : AtomicFileError.formatError(error)
