// Shows that the test suite can fail: breaks the implementation in known
// ways, one at a time, runs the package's tests against each broken variant,
// and reports which breakages the suite caught. Every one must be caught.
//
//   pnpm mutation-check            all mutations
//   pnpm mutation-check fsync      only those whose name contains "fsync"
//   pnpm mutation-check --patterns only check that the patterns are still there
//
// The source file is restored after each run, also when interrupted. Do not
// build (tsc -b) while it runs: the build would compile a broken variant.
import { spawnSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"

const src = "packages/atomic-file/src/internal"
const steps = `${src}/writeSteps.ts`
const service = `${src}/atomicFile.ts`
const queue = `${src}/keyedQueue.ts`
const direct = `${src}/directReplace.ts`
const coalesced = `${src}/coalescedWrites.ts`
const outcome = `${src}/outcome.ts`
const handles = `${src}/handles.ts`
const node = `${src}/nodeHandles.ts`

// Each mutation is one or more edits (file, from, to), applied together.
// "(Effect path)": AtomicFile.Default, and layerNode's streams, updates and
// fallbacks; "(direct)": layerNode's writeFile (internal/directReplace.ts).
const mutations = [
  {
    name: "no directory fsync (Effect path)",
    edits: [{
      file: service,
      from: `return durability === "full" ? Steps.withDirectoryOpening(ctx, target, steps) : steps(undefined)`,
      to:
        `return durability === ("never" as string) ? Steps.withDirectoryOpening(ctx, target, steps) : steps(undefined)`
    }]
  },
  {
    name: "no file fsync (Effect path)",
    edits: [{
      file: service,
      from: `if (durability !== "none") {\n            yield* Steps.syncTemp(`,
      to: `if (durability === ("never" as string)) {\n            yield* Steps.syncTemp(`
    }]
  },
  {
    name: "no directory fsync (direct)",
    edits: [{
      file: direct,
      from: `if (durability !== "full") return end(Exit.succeed(createMode))`,
      to: `if (durability !== ("never" as string)) return end(Exit.succeed(createMode))`
    }]
  },
  {
    name: "no file fsync (direct)",
    edits: [{
      file: direct,
      from: `if (durability === "none") return modeAndOwner(target, modes)`,
      to: `if (durability !== ("never" as string)) return modeAndOwner(target, modes)`
    }]
  },
  {
    name: "no per-path order",
    edits: [{
      file: queue,
      from: "return ticket.previous === undefined ? held : Effect.zipRight(waitTurn<never>(restore, ticket), held)",
      to: "return held"
    }]
  },
  {
    name: "temp file not removed on failure (Effect path)",
    edits: [{ file: steps, from: "  temp.committed\n    ? closeTemp(temp)", to: "  true\n    ? closeTemp(temp)" }]
  },
  {
    name: "temp file not removed on failure (direct)",
    edits: [{
      file: direct,
      from: "const fail = (error: WriteError) => discard(Exit.fail(error))",
      to: "const fail = (error: WriteError) => end(Exit.fail(error))"
    }]
  },
  {
    // every chunk of the stream is held in memory until the stream ends
    name: "stream buffered whole before writing",
    edits: [{ file: steps, from: "Stream.toPull(stream)", to: "Stream.toPull(Stream.rechunk(stream, 1 << 30))" }]
  },
  {
    name: "existing mode ignored",
    edits: [{ file: steps, from: "onSome: (info) => info.mode & 0o7777", to: "onSome: () => 0o666 & ~mask" }]
  },
  {
    name: "symbolic links not followed (Effect path)",
    edits: [{
      file: steps,
      from: `if (symlinks === "replace") {`,
      to: `if (symlinks === "replace" || symlinks === "follow") {`
    }]
  },
  {
    name: "a link taken for a regular file (guessed target, both layerNode paths)",
    edits: [{
      file: steps,
      from: `? info !== undefined && info.type === "File" ? Option.some(info) : undefined`,
      to: `? info !== undefined && info.type !== "Directory" ? Option.some(info) : Option.none()`
    }]
  },
  {
    name: "writes straight into the target, no rename (Effect path)",
    edits: [
      {
        file: steps,
        from: "const tempPath = path.join(target.directory, makeTempName(target.base, processId()))",
        to: "const tempPath = target.path + (processId() < 0 ? makeTempName(target.base, 0) : \"\")"
      },
      {
        file: handles,
        from: `create: (path, mode) => open(path, { flag: "wx", mode })`,
        to: `create: (path, mode) => open(path, { flag: "w", mode })`
      },
      {
        file: node,
        from: `NFS.open(path, "wx", mode, callback)), makeHandle)`,
        to: `NFS.open(path, "w", mode, callback)), makeHandle)`
      },
      { file: steps, from: "ctx.fs.rename(temp.path, target.path).pipe(", to: "Effect.void.pipe(" }
    ]
  },
  {
    name: "writes straight into the target, no rename (direct)",
    edits: [
      {
        file: direct,
        from: "const tempPath = request.path.join(directory, makeTempName(base, processId()))",
        to: "const tempPath = absolute + (processId() < 0 ? makeTempName(base, 0) : \"\")"
      },
      { file: node, from: `NFS.open(path, "wx", mode, done)`, to: `NFS.open(path, "w", mode, done)` },
      {
        file: direct,
        from: "calls.rename(\n      tempPath,\n      absolute,",
        to:
          "((_a: string, _b: string, callback: (error: undefined) => void) => callback(undefined))(\n      tempPath,\n      absolute,"
      }
    ]
  },
  {
    name: "an interrupted replace not waited for (direct)",
    edits: [{
      file: direct,
      from: "      onEnd = callback",
      to: "      callback({ exit: Exit.void as never, warnings: [] })"
    }]
  },
  {
    name: "coalesced content taken when the batch starts, not when it is written",
    edits: [{
      file: coalesced,
      from: "return Effect.onExit(queue.runTicket(ticket, restore)(run(takeFrom(path, batch))), finish(path, batch))",
      to:
        "const taken = takeFrom(path, batch)()\n        return Effect.onExit(queue.runTicket(ticket, restore)(run(() => taken)), finish(path, batch))"
    }]
  },
  {
    name: "coalesced content taken when a batch started with callbacks starts (layerNode)",
    edits: [{
      file: coalesced,
      from: "const running = start(takeFrom(path, batch), (ending) => {",
      to: "const taken = takeFrom(path, batch)()\n      const running = start(() => taken, (ending) => {"
    }]
  },
  {
    name: "the turn not passed on when a batch started with callbacks is interrupted (layerNode)",
    edits: [{
      file: coalesced,
      from: "      ticket.pass()\n",
      to: "      if (!Exit.isInterrupted(exit)) ticket.pass()\n"
    }]
  },
  {
    name: "the members of a batch started with callbacks told it succeeded when it failed (layerNode)",
    edits: [{
      file: coalesced,
      from: "        settle(ending.exit)\n",
      to: "        settle(Exit.void)\n"
    }]
  },
  {
    name: "a call that found the batch open joins it a step later (another fiber may take the content meanwhile)",
    edits: [{
      file: coalesced,
      from: "return join(restore, path, key, last, data, order, run)",
      to: "return Effect.suspend(() => join(restore, path, key, last, data, order, run))"
    }]
  },
  {
    name: "an outcome's waiter registered without checking again (set meanwhile: never called)",
    edits: [{
      file: outcome,
      from: "          if (exit !== undefined) return resume(exit)\n",
      to: ""
    }]
  },
  {
    name: "umask read on every write (it sets the mask to 0 for a moment)",
    edits: [{
      file: steps,
      from:
        "  mask: number\n): { readonly mode: number; readonly createMode: number; readonly createdMode: number; readonly mask: number } => {\n",
      to:
        "  _layerMask: number\n): { readonly mode: number; readonly createMode: number; readonly createdMode: number; readonly mask: number } => {\n  const mask = umaskOf(undefined)\n"
    }]
  },
  {
    name: "calls that joined an interrupted batch not written again",
    edits: [{
      file: coalesced,
      from: "          ? restore(submit(path, key, data, seq, run))",
      to: "          ? Effect.failCause(cause)"
    }]
  }
]

// `--patterns`: only check that every mutation's patterns are still in the sources
const patternsOnly = process.argv.includes("--patterns")
const only = process.argv.slice(2).find((arg) => !arg.startsWith("--"))
const selected = mutations.filter((m) => only === undefined || m.name.includes(only))
let caught = 0
const missed = []
for (const mutation of selected) {
  const originals = new Map()
  for (const { file } of mutation.edits) {
    if (!originals.has(file)) originals.set(file, readFileSync(file, "utf8"))
  }
  const mutated = new Map(originals)
  for (const { file, from, to } of mutation.edits) {
    const text = mutated.get(file)
    if (!text.includes(from)) {
      console.error(`mutation "${mutation.name}": its pattern is no longer in ${file}; update this script`)
      process.exit(2)
    }
    mutated.set(file, text.replace(from, to))
  }
  if (patternsOnly) continue
  const restore = () => {
    for (const [file, text] of originals) writeFileSync(file, text)
  }
  // interrupted: put the sources back and stop (do not go on to the next one)
  const abort = () => {
    restore()
    process.exit(130)
  }
  process.once("SIGINT", abort)
  process.once("SIGTERM", abort)
  try {
    for (const [file, text] of mutated) writeFileSync(file, text)
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
if (patternsOnly) {
  console.log(`mutation-check: the patterns of all ${selected.length} mutations are in the sources`)
  process.exit(0)
}
console.log(`mutation-check: ${caught} caught, ${missed.length} missed`)
process.exit(missed.length === 0 ? 0 : 1)
