// The project's main job, end to end, with the built commands: in a fresh
// temporary working directory, save the sample sessions into the default
// store (.intent/sessions.jsonl), list them, update one, check the file and
// show it; then replace a file atomically from standard input.
// Run with `pnpm demo` from the repository root.
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const bin = (name) => fileURLToPath(new URL(`../dist/bundle/${name}.js`, import.meta.url))
const samples = fileURLToPath(new URL("sample-sessions.jsonl", import.meta.url))
const cwd = mkdtempSync(join(tmpdir(), "intent-demo-"))

const run = (name, args, input) => {
  console.log(`$ ${name} ${args.join(" ")}${input === undefined ? "" : "   (input on stdin)"}`)
  const result = spawnSync(process.execPath, [bin(name), ...args], {
    cwd,
    input: input ?? "",
    encoding: "utf8",
    env: { ...process.env, INTENT_SESSIONS_FILE: "" }
  })
  if (result.error) throw result.error
  process.stdout.write(result.stdout)
  process.stdout.write(result.stderr)
  if (result.status !== 0) console.log(`(exit status ${result.status})`)
  console.log()
  return result
}

console.log(`working directory: ${cwd}\n`)
run("intent-sessions", ["save", samples])
run("intent-sessions", ["list"])
const got = run("intent-sessions", ["get", "demo-api-billing"])
if (got.status !== 0) {
  console.error("demo: the commands failed; see above")
  process.exit(1)
}
const session = JSON.parse(got.stdout)
run("intent-sessions", ["save", "-"], JSON.stringify({ ...session, stage: "complete", rounds_completed: 5 }))
run("intent-sessions", ["list"])
run("intent-sessions", ["check"])
run("intent-sessions", ["compact"])
console.log("$ cat .intent/sessions.jsonl   (lines cut at 100 characters)")
for (const line of readFileSync(join(cwd, ".intent/sessions.jsonl"), "utf8").trimEnd().split("\n")) {
  console.log(line.length > 100 ? `${line.slice(0, 97)}...` : line)
}
console.log()
run("atomic-write", ["settings.json", "--mode", "640"], `{"theme":"dark"}\n`)
console.log(`$ cat settings.json\n${readFileSync(join(cwd, "settings.json"), "utf8")}`)
run("intent-sessions", ["save", "-"], `{"id":"broken","stage":"Discovery"}\n`)
rmSync(cwd, { recursive: true, force: true })
