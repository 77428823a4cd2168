/**
 * The built commands, run as child processes with real stdin, stdout and
 * stderr: exit status 0 on success, 1 on failure, 2 on a usage error, and
 * one line on stderr for any failure (never a stack trace).
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import {
  chmodSync,
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from "node:fs"
import { writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pipeline } from "node:stream/promises"
import { fileURLToPath } from "node:url"
import { afterEach, beforeEach } from "vitest"
import { type ProcessOptions, type ProcessResult, runProcess } from "./runProcess.js"

const bin = (name: string) => fileURLToPath(new URL(`../dist/bundle/${name}.js`, import.meta.url))
const samples = fileURLToPath(new URL("../examples/sample-sessions.jsonl", import.meta.url))

/** Runs a built command; the environment never names a sessions file unless the test says so. */
const run = (name: string, args: ReadonlyArray<string>, options: ProcessOptions = {}): Promise<ProcessResult> =>
  runProcess(process.execPath, [bin(name), ...args], {
    ...options,
    env: { INTENT_SESSIONS_FILE: "", ...options.env }
  })

/** A failure reported in exactly one line, with no stack trace. */
const expectOneLineFailure = (result: ProcessResult, status: number, text: string) => {
  expect(result.status, result.stderr).toBe(status)
  const lines = result.stderr.trimEnd().split("\n")
  expect(lines.length, result.stderr).toBe(1)
  expect(result.stderr).toContain(text)
  expect(result.stderr).not.toMatch(/\n\s+at /)
}

let dir = ""
beforeEach(() => {
  expect(existsSync(bin("atomic-write")), "build first: pnpm build").toBe(true)
  dir = mkdtempSync(join(tmpdir(), "cli-test-"))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const isRoot = process.getuid?.() === 0
const hasScript = (await runProcess("sh", ["-c", "command -v script"])).status === 0

describe("atomic-write", () => {
  it("replaces a file with standard input, creating parents", async () => {
    const target = join(dir, "a/b/data.json")
    expect((await run("atomic-write", [target], { input: `{"v":1}\n` })).status).toBe(0)
    expect(readFileSync(target, "utf8")).toBe(`{"v":1}\n`)
    const again = await run("atomic-write", [target, "--mode", "600", "--durability", "none"], { input: "second" })
    expect(again).toMatchObject({ status: 0, stdout: "", stderr: "" })
    expect(readFileSync(target, "utf8")).toBe("second")
    expect(statSync(target).mode & 0o777).toBe(0o600)
    expect(readdirSync(join(dir, "a/b"))).toEqual(["data.json"])
  })

  it("works as a crash-safe sponge: the input may be the file itself", async () => {
    const target = join(dir, "data.txt")
    writeFileSync(target, "b\na\n")
    const sorted = await runProcess("sh", [
      "-c",
      `sort "${target}" | "${process.execPath}" "${bin("atomic-write")}" "${target}"`
    ])
    expect(sorted.status).toBe(0)
    expect(readFileSync(target, "utf8")).toBe("a\nb\n")
  })

  it("--symlinks follow keeps the link; replace replaces it", async () => {
    writeFileSync(join(dir, "real"), "old")
    symlinkSync("real", join(dir, "link"))
    expect((await run("atomic-write", [join(dir, "link")], { input: "new" })).status).toBe(0)
    expect(readFileSync(join(dir, "real"), "utf8")).toBe("new")
    expect((await run("atomic-write", [join(dir, "link"), "--symlinks", "replace"], { input: "own" })).status).toBe(0)
    expect(readFileSync(join(dir, "real"), "utf8")).toBe("new")
    expect(readFileSync(join(dir, "link"), "utf8")).toBe("own")
  })

  it("bad targets: a directory, a missing directory with --no-create-parents, a file as parent", async () => {
    mkdirSync(join(dir, "d"))
    expectOneLineFailure(await run("atomic-write", [join(dir, "d")], { input: "x" }), 1, "is a directory")
    expectOneLineFailure(
      await run("atomic-write", [join(dir, "missing/f"), "--no-create-parents"], { input: "x" }),
      1,
      "not found (ENOENT)"
    )
    writeFileSync(join(dir, "file"), "keep")
    expectOneLineFailure(await run("atomic-write", [join(dir, "file/f")], { input: "x" }), 1, "not a directory")
    expect(readFileSync(join(dir, "file"), "utf8")).toBe("keep")
    expect(readdirSync(dir).sort()).toEqual(["d", "file"])
  })

  it.skipIf(!isRoot)("an unwritable directory: permission denied, one line (run as nobody)", async () => {
    const locked = join(dir, "locked")
    mkdirSync(locked)
    chmodSync(dir, 0o755)
    writeFileSync(join(locked, "f"), "old")
    const probe = await runProcess(process.execPath, [bin("atomic-write"), "--help"], { uid: 65534, gid: 65534 })
    if (probe.status !== 0) {
      console.warn("skipped: user nobody cannot read the built command here (its directory is private)")
      return
    }
    expectOneLineFailure(
      await run("atomic-write", [join(locked, "f")], { input: "new", uid: 65534 }),
      1,
      "permission denied (EACCES)"
    )
    expect(readFileSync(join(locked, "f"), "utf8")).toBe("old")
  })

  it("usage errors exit with status 2", async () => {
    expect((await run("atomic-write", [])).status).toBe(2)
    expect((await run("atomic-write", [join(dir, "f"), "--durability", "sometimes"])).status).toBe(2)
    expectOneLineFailure(
      await run("atomic-write", [join(dir, "f"), "--mode", "999"], { input: "x" }),
      2,
      "--mode must be octal"
    )
    expect(existsSync(join(dir, "f"))).toBe(false)
    const help = await run("atomic-write", ["--help"])
    expect(help.status).toBe(0)
    expect(help.stdout).toContain("--durability")
  })

  it("100 MB of standard input: written whole", async () => {
    const source = join(dir, "source.bin")
    const chunk = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7) & 0xff
    await writeFile(source, Buffer.concat(Array.from({ length: 100 }, () => chunk)))
    const target = join(dir, "target.bin")
    const child = spawn(process.execPath, [bin("atomic-write"), target, "--durability", "file"], {
      stdio: ["pipe", "ignore", "pipe"]
    })
    createReadStream(source).pipe(child.stdin)
    const status = await new Promise<number | null>((resolve) => child.on("exit", resolve))
    expect(status).toBe(0)
    // streamed: hashing 200 MB in one synchronous call would stall the worker too
    const digest = async (file: string) => {
      const hash = createHash("sha256")
      await pipeline(createReadStream(file), hash)
      return hash.digest("hex")
    }
    expect(statSync(target).size).toBe(100 * 1024 * 1024)
    expect(await digest(target)).toBe(await digest(source))
    expect(readdirSync(dir).sort()).toEqual(["source.bin", "target.bin"])
  })

  it("memory stays bounded: 400 MB through a process whose peak RSS stays under 300 MB", async () => {
    const target = join(dir, "big.bin")
    const child = spawn(process.execPath, [bin("atomic-write"), target, "--durability", "none"], {
      stdio: ["pipe", "ignore", "pipe"]
    })
    let peakRss = 0
    const timer = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8")
        peakRss = Math.max(peakRss, Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024)
      } catch {
        // the process is gone
      }
    }, 20)
    const chunk = Buffer.alloc(1024 * 1024, 1)
    for (let i = 0; i < 400; i++) {
      if (!child.stdin.write(chunk)) await new Promise((resolve) => child.stdin.once("drain", resolve))
    }
    child.stdin.end()
    const status = await new Promise<number | null>((resolve) => child.on("exit", resolve))
    clearInterval(timer)
    expect(status).toBe(0)
    expect(statSync(target).size).toBe(400 * 1024 * 1024)
    // a process that held the input would need more than 400 MB
    expect(peakRss).toBeGreaterThan(0)
    expect(peakRss).toBeLessThan(300 * 1024 * 1024)
  })

  it.skipIf(!hasScript)("a progress line on stderr when it is a terminal (run under script(1))", async () => {
    const source = join(dir, "in.bin")
    await writeFile(source, Buffer.alloc(30 * 1024 * 1024, 7))
    const command = `"${process.execPath}" "${bin("atomic-write")}" "${
      join(dir, "out.bin")
    }" --durability none < "${source}"`
    const result = await runProcess("script", ["-qec", command, "/dev/null"])
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/\ratomic-write: 30\.0 MiB read/)
    expect(statSync(join(dir, "out.bin")).size).toBe(30 * 1024 * 1024)
  })

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal} in the middle: the target is unchanged and no temporary file is left`, async () => {
      const target = join(dir, "data")
      writeFileSync(target, "old")
      const child = spawn(process.execPath, [bin("atomic-write"), target], { stdio: ["pipe", "ignore", "pipe"] })
      child.stdin.write("partial new content")
      // wait until the temporary file exists, then stop the process (a
      // generous limit: node starts slowly on a loaded machine)
      const giveUp = Date.now() + 30_000
      while (readdirSync(dir).length < 2 && Date.now() < giveUp) await new Promise((r) => setTimeout(r, 10))
      expect(readdirSync(dir).length).toBe(2)
      child.kill(signal)
      const [code, received] = await new Promise<[number | null, string | null]>((resolve) =>
        child.on("exit", (exitCode, exitSignal) => resolve([exitCode, exitSignal]))
      )
      // interrupted, which is not a success
      expect([code, received]).toEqual([130, null])
      expect(readFileSync(target, "utf8")).toBe("old")
      expect(readdirSync(dir)).toEqual(["data"])
    })
  }
})

describe("intent-sessions", () => {
  const store = () => join(dir, ".intent/sessions.jsonl")
  const sessions = (cwd = dir, env: Record<string, string> = {}) => (args: ReadonlyArray<string>, input?: string) =>
    run("intent-sessions", args, input === undefined ? { cwd, env } : { cwd, env, input })

  it("save, list, get, remove, compact and check on the default file", async () => {
    const cli = sessions()
    const saved = await cli(["save", samples])
    expect(saved.status, saved.stderr).toBe(0)
    expect(saved.stdout).toContain("saved 3 session(s)")
    const list = await cli(["list"])
    expect(list.status).toBe(0)
    expect(list.stdout.split("\n")[0]).toMatch(/^ID\s+PROFILE\s+STAGE\s+ROUNDS\s+UPDATED$/)
    expect(list.stdout).toContain("demo-cli-backup")
    expect(list.stdout).toContain("3 session(s)")
    const json = await cli(["list", "--json"])
    expect(json.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { id: string }).id)).toEqual([
      "demo-api-billing",
      "demo-cli-backup",
      "demo-api-search"
    ])
    const one = await cli(["get", "demo-api-search"])
    expect(one.status).toBe(0)
    const session = JSON.parse(one.stdout) as Record<string, unknown>
    expect(session.id).toBe("demo-api-search")
    // update it through standard input, as JSON
    expect((await cli(["save", "-"], JSON.stringify({ ...session, stage: "complete" }, null, 2))).status).toBe(0)
    expect((JSON.parse((await cli(["get", "demo-api-search"])).stdout) as { stage: string }).stage).toBe("complete")
    expect((await cli(["remove", "demo-api-billing"])).stdout).toContain("removed demo-api-billing")
    expect((await cli(["compact"])).stdout).toContain("compacted")
    expect((await cli(["compact"])).stdout).toContain("already compact")
    const check = await cli(["check"])
    expect(check.status).toBe(0)
    expect(check.stdout).toContain("sessions: 2")
    expect(readFileSync(store(), "utf8").trim().split("\n").length).toBe(2)
  })

  it("--file and INTENT_SESSIONS_FILE choose the store", async () => {
    const other = join(dir, "elsewhere.jsonl")
    expect((await sessions()(["--file", other, "save", samples])).status).toBe(0)
    expect((await sessions(dir, { INTENT_SESSIONS_FILE: other })(["list", "--json"])).stdout.trim().split("\n").length)
      .toBe(3)
    expect(existsSync(store())).toBe(false)
  })

  it("bad input names the line and the field, and nothing is saved", async () => {
    const cli = sessions()
    expect((await cli(["save", samples])).status).toBe(0)
    const before = readFileSync(store(), "utf8")
    const good = readFileSync(samples, "utf8").split("\n")[0] ?? ""
    expectOneLineFailure(await cli(["save", "-"], `${good}\n{"id": oops}\n`), 1, "line 2: not JSON")
    const wrongStage = good.replace(`"stage":"discovery"`, `"stage":"done"`).replace("demo-api-billing", "new-id")
    expectOneLineFailure(await cli(["save", "-"], `${good}\n${wrongStage}\n`), 1, "line 2: stage")
    const noId = JSON.stringify({ ...(JSON.parse(good) as object), id: "" })
    expectOneLineFailure(await cli(["save", "-"], noId), 1, "line 1: id")
    expectOneLineFailure(await cli(["save", join(dir, "missing.jsonl")]), 1, "cannot read")
    expect(readFileSync(store(), "utf8")).toBe(before)
  })

  it("failures and usage errors: one line, exit 1 or 2", async () => {
    const cli = sessions()
    expectOneLineFailure(await cli(["get", "nobody"]), 1, `no session "nobody"`)
    expect((await cli(["frobnicate"])).status).toBe(2)
    expect((await cli(["get"])).status).toBe(2)
    expect((await cli(["--help"])).status).toBe(0)
    for (const sub of ["list", "get", "save", "remove", "compact", "check"]) {
      const help = await cli([sub, "--help"])
      expect(help.status, sub).toBe(0)
      expect(help.stdout, sub).toContain(sub)
    }
    writeFileSync(join(dir, "plain"), "x")
    expectOneLineFailure(
      await sessions()(["--file", join(dir, "plain/s.jsonl"), "save", samples]),
      1,
      "not a directory"
    )
  })

  it("check reports lines that are not sessions and exits 1", async () => {
    mkdirSync(join(dir, ".intent"))
    const good = readFileSync(samples, "utf8").split("\n")[0] ?? ""
    writeFileSync(store(), `${good}\nnot json at all\n`)
    const check = await sessions()(["check"])
    expect(check.status).toBe(1)
    expect(check.stdout).toContain("line 2: not a session")
    expect(check.stderr.trim().split("\n").length).toBe(1)
  })
})
