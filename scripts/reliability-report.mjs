#!/usr/bin/env node
// Assembles docs/RELIABILITY.md from the fragments the reliability runs write
// (docs/reliability/<area>.md, see test-support/reliabilityReport.ts): the
// hand-written text of RELIABILITY.md stays, the part between the GENERATED
// markers is replaced by the fragments in a fixed order. A missing fragment
// is said to be missing, never made up.
//
//   node scripts/reliability-report.mjs            assemble
//   node scripts/reliability-report.mjs --machine  first describe this machine
//                                                  (docs/reliability/machine.md);
//                                                  `pnpm test:reliability` does this
//                                                  right after its run
import { execFileSync } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const fragments = join(root, "docs", "reliability")
const target = join(root, "docs", "RELIABILITY.md")

/** The areas, in order, with the heading to show when a fragment is missing. */
const AREAS = [
  ["machine", "Machine and file system"],
  ["fault-injection", "1. Fault injection at every step"],
  ["kills", "2. Process kills"],
  ["readers", "3. Readers during writes"],
  ["kernel-errors", "4. Real errors from a real kernel"],
  ["power-loss", "5. Power loss on a real file system"],
  ["modes", "6. Permission bits of new files under concurrent writes"],
  ["crash-sim", "Crash simulator"]
]

const BEGIN = "<!-- BEGIN GENERATED: scripts/reliability-report.mjs assembles this part from docs/reliability/*.md -->"
const END = "<!-- END GENERATED -->"

const run = (command, args) => {
  try {
    return execFileSync(command, args, { encoding: "utf8" }).trim()
  } catch {
    return "unknown"
  }
}

const describeMachine = () => {
  const cpus = os.cpus()
  const tmp = os.tmpdir()
  const text = [
    "## Machine and file system",
    "",
    "Written by `node scripts/reliability-report.mjs --machine` at the end of `pnpm test:reliability`.",
    "",
    `- Run finished: ${new Date().toISOString()}`,
    `- CPU: ${cpus.length} x ${cpus[0]?.model ?? "unknown"}; load average at the end ${
      os.loadavg().map((n) => n.toFixed(1)).join(", ")
    }`,
    `- Memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- System: ${os.type()} ${os.release()} (${
      run("sh", ["-c", ". /etc/os-release && echo $PRETTY_NAME"])
    }), Node ${process.version}`,
    `- Running as: ${
      process.getuid?.() === 0 ? "root (the root-only sections ran)" : "not root (the root-only sections were skipped)"
    }`,
    `- File system of the test directories (${tmp}): ${
      run("findmnt", ["-n", "-o", "FSTYPE,SOURCE,OPTIONS", "--target", tmp])
    }`,
    ""
  ].join("\n")
  writeFileSync(join(fragments, "machine.md"), text)
}

if (process.argv.includes("--machine")) describeMachine()

const parts = AREAS.map(([area, title]) => {
  const file = join(fragments, `${area}.md`)
  return existsSync(file)
    ? readFileSync(file, "utf8").trim()
    : `## ${title}\n\nNot generated yet (docs/reliability/${area}.md is missing).`
})

const current = readFileSync(target, "utf8")
const start = current.indexOf(BEGIN)
const end = current.indexOf(END)
if (start < 0 || end < start) {
  console.error(`${target} has no GENERATED markers; add\n${BEGIN}\n${END}`)
  process.exit(1)
}
const next = `${current.slice(0, start)}${BEGIN}\n\n${parts.join("\n\n")}\n\n${current.slice(end)}`
writeFileSync(target, next)
console.log(
  `docs/RELIABILITY.md: ${
    AREAS.filter(([area]) => existsSync(join(fragments, `${area}.md`))).length
  } of ${AREAS.length} fragments`
)
