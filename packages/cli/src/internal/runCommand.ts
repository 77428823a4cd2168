/**
 * What both commands share: running an `@effect/cli` command with
 * `NodeRuntime.runMain` (so that SIGINT and SIGTERM interrupt it and every
 * scope closes, removing temporary files), and turning its outcome into one
 * line on stderr and an exit status: 0 success, 1 failure, 2 usage error,
 * 130 interrupted.
 */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/** A usage problem found after parsing (a bad `--mode`, say): exit status 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/** A failure the command reports in one line: exit status 1. */
export class CommandFailure extends Data.TaggedError("CommandFailure")<{ readonly message: string }> {}

export const EXIT_FAILURE = 1
export const EXIT_USAGE = 2
/** interrupted by SIGINT or SIGTERM: the write did not happen */
export const EXIT_INTERRUPTED = 130

/**
 * An interruption (SIGINT, SIGTERM) is not a success: the runtime's default
 * teardown would exit with 0 after it. Everything else keeps the status the
 * program set.
 */
const teardown = <E, A>(exit: Exit.Exit<E, A>, onExit: (code: number) => void) =>
  onExit(
    Exit.isFailure(exit)
      ? Cause.isInterruptedOnly(exit.cause) ? EXIT_INTERRUPTED : EXIT_FAILURE
      : typeof process.exitCode === "number"
      ? process.exitCode
      : 0
  )

const setExitCode = (code: number) =>
  Effect.sync(() => {
    process.exitCode = code
  })

/**
 * Runs `command` on `process.argv`. `describe` turns the command's own
 * errors into one line; anything else unexpected is reported as an internal
 * error, still in one line, never as a stack trace.
 */
export const runCommand = <Name extends string, R extends NodeContext.NodeContext, E, A>(
  name: string,
  version: string,
  command: Command.Command<Name, R, E, A>,
  describe: (error: E) => string
): void => {
  const run = Command.run(command, { name, version })
  run(process.argv).pipe(
    Effect.catchAll((error): Effect.Effect<void> => {
      if (ValidationError.isValidationError(error)) {
        // @effect/cli has already printed what was wrong with the usage
        return setExitCode(EXIT_USAGE)
      }
      const failure = error as E | UsageError | CommandFailure
      if (typeof failure === "object" && failure !== null && "_tag" in failure) {
        if (failure._tag === "UsageError") {
          return Effect.zipRight(
            Console.error(`${name}: ${(failure as UsageError).message} (see ${name} --help)`),
            setExitCode(EXIT_USAGE)
          )
        }
        if (failure._tag === "CommandFailure") {
          return Effect.zipRight(
            Console.error(`${name}: ${(failure as CommandFailure).message}`),
            setExitCode(EXIT_FAILURE)
          )
        }
      }
      return Effect.zipRight(Console.error(`${name}: ${describe(error as E)}`), setExitCode(EXIT_FAILURE))
    }),
    Effect.catchAllDefect((defect) =>
      Effect.zipRight(
        Console.error(`${name}: internal error: ${Cause.pretty(Cause.die(defect)).split("\n")[0]}`),
        setExitCode(EXIT_FAILURE)
      )
    ),
    Effect.provide(NodeContext.layer),
    // R is within NodeContext (the constraint), which TypeScript cannot see
    // through `Exclude` on a type parameter
    (program) => program as Effect.Effect<void>,
    NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true, teardown })
  )
}
