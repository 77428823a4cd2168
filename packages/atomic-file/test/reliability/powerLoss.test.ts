/**
 * Power loss on a real file system (issue 4, section 5).
 *
 * A writer child process replaces a file (or appends records to one) on an
 * ext4 file system mounted from a loop device, and acknowledges each version
 * once the call returned. At random moments it is stopped with SIGSTOP, and
 * the image file is copied while the device completes no write: that copy is
 * what a power cut at that moment would leave. Each copy is repaired with
 * `e2fsck -fy` (as a boot would), mounted read-only, and checked: the file is
 * one complete version, not older than the last acknowledged one.
 *
 * The library's durable modes must come out intact in every image; the same
 * writers without fsync (`durability: "none"`, a plain `fs.writeFile`) are
 * the controls that show the check can fail.
 *
 * With RELIABILITY_REPORT=1 the figures go to docs/reliability/power-loss.md.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { join } from "node:path"
import { kill, packageRoot, requireBuild, spawnScript } from "../childProcess.js"
import {
  copyQuiescentImage,
  describeMachine,
  deviceActivity,
  ext4Options,
  fsckImage,
  imageBytes,
  loopDevice,
  makeExt4Image,
  mkfsOptions,
  mountExt4,
  mountOptions,
  readFromImage,
  stopProcess,
  unavailableBecause
} from "./ext4Image.js"
import { badVerdicts, checkLog, checkVersion, type Verdict, type Writer, writerScript } from "./writtenVersions.js"

interface Mode {
  readonly writer: Writer
  readonly kind: "versions" | "log"
  /** the library's durable mode (every image must be intact) or a control */
  readonly control: boolean
  readonly maxBytes: number
  readonly minImages: number
  /** the run lasts at least this long: ext4 commits its journal every 5 s */
  readonly minSeconds: number
}

interface ModeResult {
  readonly mode: Mode
  readonly images: number
  readonly counts: Record<Verdict, number>
  readonly fragments: number
  /** images on which e2fsck exited with 1: it replayed the journal or corrected something */
  readonly fsckCorrected: number
  readonly discardedCopies: number
  readonly acknowledged: number
  readonly seconds: number
  readonly failures: ReadonlyArray<string>
  /** the loop device's counters moved during the run: the copy guard watches the right device */
  readonly deviceWritesSeen: boolean
  /** the options in force on the writer's file system, as the kernel lists them */
  readonly fsOptions: string
}

/**
 * The library's durable modes take at least 100 images each; the controls
 * (no fsync) run for at least 6 s, so that their images include states after
 * the first journal commit.
 */
const mode = (writer: Writer, control: boolean): Mode => {
  const log = writer.startsWith("append")
  return {
    writer,
    control,
    kind: log ? "log" : "versions",
    maxBytes: log ? 16 * 1024 : 4 * 1024 * 1024,
    minImages: control ? 40 : 100,
    minSeconds: 6
  }
}

const modes: ReadonlyArray<Mode> = [
  mode("writeFile-full", false),
  mode("append-full", false),
  mode("writeFile-none", true),
  mode("append-none", true),
  mode("fs.writeFile", true)
]

const TARGET = "target"

/** The longest a mode waits for the loop device to complete its first write. */
const MAX_SECONDS = 30

/** Runs one writer on a fresh ext4 image and checks images until the mode's minimums are met. */
const runMode = (mode: Mode, workDirectory: string) =>
  Effect.scoped(Effect.gen(function*() {
    const directory = join(workDirectory, mode.writer)
    const mountPoint = join(directory, "mnt")
    const checkPoint = join(directory, "check")
    mkdirSync(mountPoint, { recursive: true })
    mkdirSync(checkPoint)
    const image = join(directory, "ext4.img")
    const copy = join(directory, "copy.img")
    const ackFile = join(directory, "acknowledged")
    yield* makeExt4Image(image)
    const device = yield* loopDevice(image, { readOnly: false })
    yield* mountExt4(device, mountPoint, mountOptions)
    const activityAtStart = deviceActivity(device).completed
    const fsOptions = ext4Options(device)

    const started = Date.now()
    const child = yield* Effect.acquireRelease(
      spawnScript(writerScript, [mode.writer, join(mountPoint, TARGET), ackFile, String(mode.maxBytes)]),
      kill
    )
    const pid = child.process.pid
    if (pid === undefined) return yield* Effect.dieMessage("the writer did not start")
    const first = yield* child.waitForLine((line) => line === "ready" || line.startsWith("failed"))
    if (first !== "ready") return yield* Effect.dieMessage(`the writer failed: ${first}`)

    const counts = Object.fromEntries(["intact", ...badVerdicts].map((v) => [v, 0])) as Record<Verdict, number>
    const failures: Array<string> = []
    let images = 0
    let fragments = 0
    let fsckCorrected = 0
    let discardedCopies = 0
    let acked = 0
    // Until the minimums are met, counted from the writer's first write; and
    // until the device has completed a write (the first journal commit comes
    // about 5 s after the first change, later on a quiet machine), so that a
    // control without fsync has had its chance to reach the disk. A device
    // still silent after MAX_SECONDS fails the run below.
    const writing = Date.now()
    const more = () => {
      const elapsed = Date.now() - writing
      if (images < mode.minImages || elapsed < mode.minSeconds * 1000) return true
      return deviceActivity(device).completed === activityAtStart && elapsed < MAX_SECONDS * 1000
    }
    while (more()) {
      yield* Effect.sleep(`${Math.floor(Math.random() * 60)} millis`)
      if (child.process.exitCode !== null || child.process.signalCode !== null) {
        return yield* Effect.dieMessage(`the writer exited: ${child.lines.join(" | ")}`)
      }
      yield* stopProcess(pid)
      acked = Number(readFileSync(ackFile, "utf8").trim() || "0")
      discardedCopies += yield* copyQuiescentImage(image, device, copy)
      process.kill(pid, "SIGCONT")

      images++
      const fsck = fsckImage(copy)
      let verdict: Verdict
      let detail = ""
      if (fsck.status >= 4) {
        verdict = "damaged"
        detail = fsck.output.slice(-400)
      } else {
        if (fsck.status !== 0) fsckCorrected++
        const content = yield* Effect.either(readFromImage(copy, checkPoint, TARGET))
        if (content._tag === "Left") {
          verdict = "damaged"
          detail = content.left.message
        } else if (mode.kind === "versions") {
          verdict = checkVersion(content.right, acked)
        } else {
          const log = checkLog(content.right, acked)
          verdict = log.verdict
          if (log.fragment) fragments++
        }
      }
      counts[verdict]++
      if (verdict !== "intact" && failures.length < 5) {
        failures.push(`image ${images}: ${verdict}, last acknowledged ${acked}, e2fsck exit ${fsck.status} ${detail}`)
      }
      rmSync(copy, { force: true })
    }
    return {
      mode,
      images,
      counts,
      fragments,
      fsckCorrected,
      discardedCopies,
      acknowledged: acked,
      seconds: (Date.now() - started) / 1000,
      failures,
      deviceWritesSeen: deviceActivity(device).completed !== activityAtStart,
      fsOptions
    } satisfies ModeResult
  }))

const command =
  "pnpm build && RELIABILITY_REPORT=1 pnpm exec vitest run packages/atomic-file/test/reliability/powerLoss.test.ts"

const renderReport = (results: ReadonlyArray<ModeResult>, totalSeconds: number): string => {
  const machine = describeMachine()
  const cpu = cpus()
  const row = (r: ModeResult) =>
    `| \`${r.mode.writer}\` | ${r.mode.control ? "control" : "durable"} | ${r.images} | ${r.counts.intact} | ` +
    badVerdicts.map((v) => r.counts[v]).join(" | ") +
    ` | ${
      r.mode.kind === "log" ? r.fragments : "-"
    } | ${r.acknowledged} | ${r.fsckCorrected} | ${r.discardedCopies} | ${r.seconds.toFixed(1)} |`
  return [
    "## Power loss on ext4",
    "",
    `Generated by \`${command}\` (as root) on ${new Date().toISOString().slice(0, 10)}.`,
    "",
    `- Machine: ${cpu.length} × ${cpu[0]?.model ?? "unknown CPU"}, ${machine.kernel}; ${machine.e2fsprogs}.`,
    `- File system: a ${imageBytes / 1024 / 1024} MiB sparse image file on tmpfs, \`mkfs.ext4 ${
      mkfsOptions.join(" ")
    }\`, attached with \`losetup --find --show\` and mounted with \`-o ${mountOptions}\`; the options in force:`,
    `  \`${results[0]?.fsOptions ?? "unknown"}\`.`,
    "- Writer: a child process (the built `dist/` of `@intent/atomic-file`) writing self-describing versions",
    "  (number, length, SHA-256) of 0 B to 4 MiB with `writeFile`, or appending JSON records of 0 B to 16 KiB",
    "  with `append`; it acknowledges each version after the call returns.",
    "- Image: at a random moment the writer is stopped (SIGSTOP, every thread in state T), the last acknowledged",
    "  version is noted, the image is copied, and the copy is taken again until `/sys/block/loopN/stat` shows no",
    "  completed write, discard or flush and nothing in flight across the copy (discarded copies are counted).",
    "- Check: `e2fsck -fy` on the copy (exit 1 after a journal replay is normal; 4 or above is `damaged`), then a",
    "  read-only mount on a read-only loop device. Versions: the file must be one complete version, the last",
    "  acknowledged or the one after. Logs, read as session-storage reads JSON Lines: every terminated line and a",
    "  final line that parses must be a complete record, numbered 1, 2, ...; at least every acknowledged record",
    "  must be there; a torn final fragment that does not parse is ignored (counted under fragments).",
    "- Verdicts: `missing` (no file although versions were acknowledged) and `empty` (0 bytes) lost every",
    "  acknowledged version; `torn` is not one complete version (or a log line read back that is not a whole",
    "  record); `lost` is a complete but older version (or fewer records than acknowledged); `ahead` (two or",
    "  more versions past the acknowledged one) would be a fault of the harness; `damaged` is an e2fsck exit of",
    "  4 or more, or a repaired image that does not mount.",
    "",
    "| writer | kind | images | intact | missing | empty | torn | lost | ahead | damaged | torn fragments ignored | last acknowledged | e2fsck exit 1 | copies discarded | seconds |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...results.map(row),
    "",
    `The durable modes must have no bad image; each control must have at least one. Total run: ${
      totalSeconds.toFixed(0)
    } s.`,
    ""
  ].join("\n")
}

const unavailable = unavailableBecause()
if (unavailable !== undefined) {
  console.warn(`power-loss test skipped: it ${unavailable}`)
}

describe("power loss on ext4", () => {
  it.scopedLive.skipIf(unavailable !== undefined)(
    `durable writeFile and append leave an intact file in every image; the controls without fsync do not${
      unavailable === undefined ? "" : ` (skipped: ${unavailable})`
    }`,
    () =>
      Effect.gen(function*() {
        yield* requireBuild
        const started = Date.now()
        const workDirectory = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync("/dev/shm/atomic-file-power-loss-")),
          (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
        )
        const results = yield* Effect.forEach(modes, (mode) => runMode(mode, workDirectory))
        const totalSeconds = (Date.now() - started) / 1000
        if (process.env.RELIABILITY_REPORT === "1") {
          const docs = join(packageRoot, "..", "..", "docs", "reliability")
          mkdirSync(docs, { recursive: true })
          writeFileSync(join(docs, "power-loss.md"), renderReport(results, totalSeconds))
        }
        for (const result of results) {
          const bad = badVerdicts.reduce((sum, v) => sum + result.counts[v], 0)
          const summary = `${result.mode.writer}: ${result.images} images, ${result.counts.intact} intact, ` +
            badVerdicts.map((v) => `${result.counts[v]} ${v}`).join(", ") +
            `; ${result.discardedCopies} copies discarded by the guard`
          console.log(summary)
          expect(result.images).toBeGreaterThanOrEqual(result.mode.minImages)
          expect(result.deviceWritesSeen, `${result.mode.writer}: the loop device's write counters never moved`).toBe(
            true
          )
          if (result.mode.control) {
            expect(bad, `${summary}: a control without fsync must show at least one bad image`).toBeGreaterThan(0)
          } else {
            expect(result.failures, summary).toEqual([])
            expect(result.counts.intact).toBe(result.images)
          }
        }
      }),
    20 * 60_000
  )
})
