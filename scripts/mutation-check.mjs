// Shows that the test suite can fail: breaks the implementation in known
// ways, one at a time, runs the package's tests against each broken variant,
// and reports which breakages the suite caught. Every one must be caught.
//
//   pnpm mutation-check            all mutations
//   pnpm mutation-check fsync      only those whose name contains "fsync"
//
// The source file is restored after each run, also when interrupted. Do not
// build (tsc -b) while it runs: the build would compile a broken variant.
import { spawnSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"

const steps = "packages/atomic-file/src/internal/writeSteps.ts"
const service = "packages/atomic-file/src/internal/atomicFile.ts"
const queue = "packages/atomic-file/src/internal/keyedQueue.ts"

const mutations = [
  {
    name: "no directory fsync",
    file: service,
    from: `if (durability === "full") {\n        yield* Steps.syncDirectoryInScope(ctx, target)`,
    to: `if (durability === ("never" as string)) {\n        yield* Steps.syncDirectoryInScope(ctx, target)`
  },
  {
    name: "no file fsync",
    file: service,
    from: `if (durability !== "none") {\n        yield* Steps.syncTemp(`,
    to: `if (durability === ("never" as string)) {\n        yield* Steps.syncTemp(`
  },
  {
    name: "no per-path order",
    file: queue,
    from: "const wait: Effect.Effect<void, E> = previous === undefined",
    to: "const wait: Effect.Effect<void, E> = previous === undefined || previous !== undefined"
  },
  {
    name: "temp file not removed on failure",
    file: steps,
    from: "    temp.committed\n      ? closeQuietly(temp.fileScope)",
    to: "    true\n      ? closeQuietly(temp.fileScope)"
  },
  {
    // every chunk of the stream is held in memory until the stream ends
    name: "stream buffered whole before writing",
    file: steps,
    from: "  return Stream.runForEach(\n    stream,",
    to: "  return Stream.runForEach(\n    Stream.rechunk(stream, 1 << 30),"
  },
  {
    name: "existing mode ignored",
    file: steps,
    from: "onSome: (info) => info.mode & 0o7777",
    to: "onSome: () => 0o666 & ~mask"
  },
  {
    name: "symbolic links not followed",
    file: steps,
    from: `if (symlinks === "replace") {`,
    to: `if (symlinks === "replace" || symlinks === "follow") {`
  },
  {
    name: "writes straight into the target (no temp file, no rename)",
    file: steps,
    from: "const tempPath = path.join(target.directory, makeTempName(target.base, processId()))",
    to: "const tempPath = target.path + (processId() < 0 ? makeTempName(target.base, 0) : \"\")"
  }
]

const only = process.argv[2]
const selected = mutations.filter((m) => only === undefined || m.name.includes(only))
let caught = 0
const missed = []
for (const mutation of selected) {
  const original = readFileSync(mutation.file, "utf8")
  let mutated = original
  for (const { from, to } of [mutation]) {
    if (!mutated.includes(from)) {
      console.error(`mutation "${mutation.name}": its pattern is no longer in ${mutation.file}; update this script`)
      process.exit(2)
    }
    mutated = mutated.replace(from, to)
  }
  if (mutation.file === steps && mutation.name.startsWith("writes straight")) {
    // the target itself is opened: drop the exclusive flag and the rename
    mutated = mutated.replace(`{ flag: "wx", mode: 0o600 }`, `{ flag: "w", mode: 0o600 }`)
      .replace("ctx.fs.rename(temp.path, target.path).pipe(", "Effect.void.pipe(")
  }
  const restore = () => writeFileSync(mutation.file, original)
  // interrupted: put the source back and stop (do not go on to the next one)
  const abort = () => {
    restore()
    process.exit(130)
  }
  process.once("SIGINT", abort)
  process.once("SIGTERM", abort)
  try {
    writeFileSync(mutation.file, mutated)
    const run = spawnSync("npx", ["vitest", "run", "--project", "atomic-file"], { encoding: "utf8" })
    const failures = (run.stdout + run.stderr).split("\n").filter((line) => line.includes(" × ")).length
    if (run.status !== 0) {
      caught++
      console.log(`caught: ${mutation.name} (${failures} failing tests)`)
    } else {
      missed.push(mutation.name)
      console.log(`MISSED: ${mutation.name}: the suite still passes`)
    }
  } finally {
    restore()
    process.removeListener("SIGINT", abort)
    process.removeListener("SIGTERM", abort)
  }
}
console.log(`mutation-check: ${caught} caught, ${missed.length} missed`)
process.exit(missed.length === 0 ? 0 : 1)
