/**
 * The crash simulator: the memory FileSystem (the live view) plus a journal
 * of every change it made, by inode, from which the durable views a power
 * cut could leave at any moment are enumerated.
 *
 * Persistence models (see the package README):
 *
 * - `posix`: each file's data changes, and each directory's entry changes,
 *   form one ordered sequence per inode. `sync` of an inode makes all of its
 *   earlier changes durable. Until then any prefix of its pending changes may
 *   have reached the disk, independently of every other inode, and the last
 *   write of that prefix may be torn at a 4 KiB file-offset boundary (a
 *   prefix of its 4 KiB pieces). A rename within one directory is one change
 *   of that directory; across directories it is two (the new entry in the
 *   target directory, the removal in the source), durable at the sync of
 *   each directory.
 * - `ext4-ordered`: ext4 with `data=ordered` (and `auto_da_alloc`). Entry
 *   changes of all directories go through one journal: a prefix of them, in
 *   call order, survives; `sync` of any file or directory commits the
 *   journal. The data written to a file before it was renamed is durable
 *   whenever the rename is. Data changes are otherwise as in `posix`.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as memory from "./memoryFileSystem.js"

export type CrashModel = "posix" | "ext4-ordered"

export const PIECE = 4096

/** A durable file tree: absolute paths. */
export interface CrashedTree {
  /** regular files and their bytes */
  readonly files: ReadonlyMap<string, Uint8Array>
  readonly directories: ReadonlySet<string>
  /** symbolic links and their targets */
  readonly symlinks: ReadonlyMap<string, string>
}

type Event = memory.MemoryFileSystemEvent

/**
 * One change as the persistence model sees it: a data change of a file, or
 * an entry change of a directory (a rename across directories is split into
 * its "link" and "unlink" halves).
 */
interface Unit {
  /** index in the log: the order of calls */
  readonly index: number
  readonly event: Event
  readonly half?: "link" | "unlink"
  /** the sequence it belongs to: `d<ino>` (data), `m<ino>` or `m` (entries) */
  readonly object: string
  /** pieces of a write at 4 KiB file-offset boundaries */
  readonly pieces: number
}

/** A crash point: the log and the acknowledgements at a call boundary. */
export interface CrashPoint {
  readonly log: number
  readonly acknowledged: number
  /** how many calls had completed */
  readonly calls: number
}

export interface Journal {
  readonly observer: memory.MemoryFileSystemObserver
  readonly log: Array<Event | { readonly _tag: "Checkpoint" }>
  /** every completed call, as `method target` */
  readonly calls: Array<string>
  /** crash points, in order; recorded only between `startRecording` and the end */
  readonly points: Array<CrashPoint>
  /** makes everything so far durable, and starts recording crash points */
  readonly startRecording: () => void
  readonly acknowledge: () => void
}

export const makeJournal = (): Journal => {
  const log: Journal["log"] = []
  const calls: Array<string> = []
  const points: Array<CrashPoint> = []
  let recording = false
  let acknowledged = 0
  const point = () => {
    if (!recording) return
    const last = points[points.length - 1]
    // nothing changed since the last point: the same crash states
    if (last !== undefined && last.log === log.length && last.acknowledged === acknowledged) return
    points.push({ log: log.length, acknowledged, calls: calls.length })
  }
  return {
    log,
    calls,
    points,
    observer: {
      event: (event) => void log.push(event),
      call: (method, target) => {
        if (!recording) return
        calls.push(`${method} ${target}`)
        point()
      }
    },
    startRecording: () => {
      log.push({ _tag: "Checkpoint" })
      recording = true
      point()
    },
    acknowledge: () => {
      acknowledged++
      point()
    }
  }
}

const piecesOf = (offset: number, length: number): number =>
  length === 0 ? 1 : Math.floor((offset + length - 1) / PIECE) - Math.floor(offset / PIECE) + 1

/** The end (file offset) of the first `count` pieces of a write. */
const pieceEnd = (offset: number, length: number, count: number): number =>
  Math.min(offset + length, (Math.floor(offset / PIECE) + count) * PIECE)

const unitsOf = (index: number, event: Event, model: CrashModel): Array<Unit> => {
  const entries = (ino: number) => model === "posix" ? `m${ino}` : "m"
  switch (event._tag) {
    case "Write":
      return [{ index, event, object: `d${event.ino}`, pieces: piecesOf(event.offset, event.bytes.length) }]
    case "Truncate":
      return [{ index, event, object: `d${event.ino}`, pieces: 1 }]
    case "Link":
    case "Unlink":
      return [{ index, event, object: entries(event.directory), pieces: 1 }]
    case "Rename":
      if (event.fromDirectory === event.toDirectory || model !== "posix") {
        return [{ index, event, object: entries(event.toDirectory), pieces: 1 }]
      }
      return [
        { index, event, half: "link", object: entries(event.toDirectory), pieces: 1 },
        { index, event, half: "unlink", object: entries(event.fromDirectory), pieces: 1 }
      ]
    default:
      return []
  }
}

/** The inodes of a tree under construction. */
interface Inodes {
  readonly types: Map<number, "File" | "Directory" | "SymbolicLink">
  readonly data: Map<number, Uint8Array>
  readonly entries: Map<number, Map<string, number>>
  readonly targets: Map<number, string>
  root: number
}

const cloneInodes = (inodes: Inodes): Inodes => ({
  types: inodes.types,
  data: new Map(inodes.data),
  entries: new Map([...inodes.entries].map(([ino, entries]) => [ino, new Map(entries)])),
  targets: inodes.targets,
  root: inodes.root
})

const resize = (bytes: Uint8Array, length: number): Uint8Array => {
  if (length <= bytes.length) return bytes.slice(0, length)
  const out = new Uint8Array(length)
  out.set(bytes)
  return out
}

/** Applies a unit; a write only up to `pieces` of its 4 KiB pieces. */
const apply = (inodes: Inodes, unit: Unit, pieces = unit.pieces) => {
  const event = unit.event
  switch (event._tag) {
    case "Write": {
      const end = pieceEnd(event.offset, event.bytes.length, pieces)
      const old = inodes.data.get(event.ino) ?? new Uint8Array(0)
      const out = resize(old, Math.max(old.length, end))
      out.set(event.bytes.subarray(0, end - event.offset), event.offset)
      inodes.data.set(event.ino, out)
      return
    }
    case "Truncate":
      inodes.data.set(event.ino, resize(inodes.data.get(event.ino) ?? new Uint8Array(0), event.length))
      return
    case "Link":
      inodes.entries.get(event.directory)?.set(event.name, event.ino)
      return
    case "Unlink":
      inodes.entries.get(event.directory)?.delete(event.name)
      return
    case "Rename": {
      if (unit.half !== "link") {
        const from = inodes.entries.get(event.fromDirectory)
        if (from?.get(event.fromName) === event.ino) from.delete(event.fromName)
      }
      if (unit.half !== "unlink") inodes.entries.get(event.toDirectory)?.set(event.toName, event.ino)
      return
    }
  }
}

const treeOf = (inodes: Inodes): CrashedTree => {
  const files = new Map<string, Uint8Array>()
  const directories = new Set<string>()
  const symlinks = new Map<string, string>()
  const visit = (ino: number, path: string, depth: number) => {
    const entries = inodes.entries.get(ino)
    // a directory linked into itself through a rename cycle: stop
    if (entries === undefined || depth > 64) return
    for (const [name, child] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const childPath = `${path}/${name}`
      switch (inodes.types.get(child)) {
        case "File":
          files.set(childPath, inodes.data.get(child) ?? new Uint8Array(0))
          break
        case "SymbolicLink":
          symlinks.set(childPath, inodes.targets.get(child) ?? "")
          break
        case "Directory":
          directories.add(childPath)
          visit(child, childPath, depth + 1)
      }
    }
  }
  directories.add("/")
  visit(inodes.root, "", 0)
  return { files, directories, symlinks }
}

/** A string that is equal for equal trees. */
export const fingerprint = (tree: CrashedTree): string => {
  const parts: Array<string> = []
  for (const directory of tree.directories) parts.push(`d${directory}`)
  for (const [path, target] of tree.symlinks) parts.push(`l${path}\0${target}`)
  for (const [path, bytes] of tree.files) {
    let text = ""
    for (let i = 0; i < bytes.length; i += 8192) {
      text += String.fromCharCode(...bytes.subarray(i, i + 8192))
    }
    parts.push(`f${path}\0${bytes.length}\0${text}`)
  }
  return parts.join("\u0001")
}

const describe = (unit: Unit): string => {
  const event = unit.event
  switch (event._tag) {
    case "Write":
      return `write ${event.label} [${event.offset}, ${event.offset + event.bytes.length})`
    case "Truncate":
      return `truncate ${event.label} to ${event.length}`
    case "Link":
      return `create entry ${event.label}`
    case "Unlink":
      return `remove entry ${event.label}`
    case "Rename":
      return unit.half === undefined
        ? `rename ${event.label}`
        : `rename ${event.label} (${unit.half === "link" ? "new entry" : "removal of the old entry"})`
    default:
      return event._tag
  }
}

/** One durable state: its tree, and which pending changes reached the disk. */
export interface CrashState {
  readonly tree: CrashedTree
  /** pending changes, each with its fate: persisted, lost, or torn */
  readonly fates: ReadonlyArray<string>
  /** how many pending changes (torn ones counted as one) it persisted */
  readonly persisted: number
}

/**
 * Enumerates the durable states a crash at `point` could leave. Calls
 * `visit` for each; stops when it returns `false`. Fails (returns the count)
 * when there would be more than `limit` states.
 */
export const enumerate = (
  journal: Journal,
  point: CrashPoint,
  model: CrashModel,
  limit: number,
  visit: (state: CrashState) => boolean
): { readonly states: number } | { readonly tooMany: number } => {
  const base: Inodes = { types: new Map(), data: new Map(), entries: new Map(), targets: new Map(), root: -1 }
  const pending = new Map<string, Array<Unit>>()
  // the data writes made durable together with a durable rename (ext4)
  const renameDependencies = (units: ReadonlyArray<Unit>) => {
    if (model !== "ext4-ordered") return
    for (const unit of units) {
      if (unit.event._tag !== "Rename") continue
      const data = pending.get(`d${unit.event.ino}`) ?? []
      const before = data.filter((candidate) => candidate.index < unit.index)
      before.forEach((candidate) => apply(base, candidate))
      pending.set(`d${unit.event.ino}`, data.filter((candidate) => candidate.index > unit.index))
    }
  }
  const makeDurable = (object: string) => {
    const units = pending.get(object) ?? []
    pending.delete(object)
    units.forEach((unit) => apply(base, unit))
    renameDependencies(units)
  }
  for (let index = 0; index < point.log; index++) {
    const event = journal.log[index]
    if (event === undefined) continue
    if (event._tag === "Checkpoint") {
      // everything so far is durable: apply it in call order
      const all = [...pending.values()].flat().sort((a, b) => a.index - b.index)
      pending.clear()
      all.forEach((unit) => apply(base, unit))
      continue
    }
    if (event._tag === "Node") {
      base.types.set(event.ino, event.type)
      if (event.type === "Directory") base.entries.set(event.ino, new Map())
      if (event.target !== undefined) base.targets.set(event.ino, event.target)
      if (base.root === -1) base.root = event.ino
      continue
    }
    if (event._tag === "Sync") {
      if (model === "posix") {
        makeDurable(`d${event.ino}`)
        makeDurable(`m${event.ino}`)
      } else {
        makeDurable("m")
        makeDurable(`d${event.ino}`)
      }
      continue
    }
    for (const unit of unitsOf(index, event, model)) {
      const list = pending.get(unit.object)
      if (list === undefined) pending.set(unit.object, [unit])
      else list.push(unit)
    }
  }

  // the choices of each sequence: how many of its pending units reached the
  // disk, and how many pieces of the last one (torn when fewer than all)
  interface Choice {
    readonly count: number
    readonly pieces: number
  }
  const objects = [...pending.entries()].filter(([, units]) => units.length > 0)
  const choices = objects.map(([, units]) => {
    const out: Array<Choice> = [{ count: 0, pieces: 0 }]
    units.forEach((unit, i) => {
      for (let pieces = 1; pieces < unit.pieces; pieces++) out.push({ count: i + 1, pieces })
      out.push({ count: i + 1, pieces: unit.pieces })
    })
    return out
  })
  let total = 1
  for (const options of choices) {
    total *= options.length
    if (total > limit) return { tooMany: total }
  }

  // ext4: a persisted rename needs the file's earlier data fully persisted
  const consistent = (picked: ReadonlyArray<Choice>): boolean => {
    if (model !== "ext4-ordered") return true
    const full = new Map<string, number>()
    objects.forEach(([object, units], i) => {
      const choice = picked[i] as Choice
      const last = units[choice.count - 1]
      full.set(object, last !== undefined && choice.pieces < last.pieces ? choice.count - 1 : choice.count)
    })
    return objects.every(([, units], i) => {
      const choice = picked[i] as Choice
      return units.slice(0, choice.count).every((unit) => {
        if (unit.event._tag !== "Rename") return true
        const object = `d${unit.event.ino}`
        const data = pending.get(object) ?? []
        const needed = data.filter((candidate) => candidate.index < unit.index).length
        return (full.get(object) ?? 0) >= needed
      })
    })
  }

  const digits = choices.map(() => 0)
  let states = 0
  for (;;) {
    const picked = digits.map((digit, i) => (choices[i] as Array<Choice>)[digit] as Choice)
    if (consistent(picked)) {
      states++
      const inodes = cloneInodes(base)
      const applied: Array<{ unit: Unit; pieces: number }> = []
      const fates: Array<{ index: number; text: string }> = []
      let persisted = 0
      objects.forEach(([, units], i) => {
        const choice = picked[i] as Choice
        units.forEach((unit, u) => {
          if (u < choice.count) {
            const pieces = u === choice.count - 1 ? choice.pieces : unit.pieces
            applied.push({ unit, pieces })
            persisted++
            fates.push({
              index: unit.index,
              text: pieces < unit.pieces
                ? `torn: ${describe(unit)} (${pieces} of ${unit.pieces} 4 KiB pieces)`
                : `persisted: ${describe(unit)}`
            })
          } else {
            fates.push({ index: unit.index, text: `lost: ${describe(unit)}` })
          }
        })
      })
      applied.sort((a, b) => a.unit.index - b.unit.index).forEach(({ pieces, unit }) => apply(inodes, unit, pieces))
      const ordered = fates.sort((a, b) => a.index - b.index).map((fate) => fate.text)
      if (!visit({ tree: treeOf(inodes), fates: ordered, persisted })) return { states }
    }
    // the next combination
    let position = 0
    while (position < digits.length) {
      const next = (digits[position] as number) + 1
      if (next < (choices[position] as Array<Choice>).length) {
        digits[position] = next
        break
      }
      digits[position] = 0
      position++
    }
    if (position === digits.length) return { states }
  }
}

/** A memory FileSystem holding `tree`. */
export const fileSystemOf = (tree: CrashedTree): FileSystem.FileSystem => {
  const fs = memory.make()
  Effect.runSync(Effect.gen(function*() {
    for (const directory of tree.directories) yield* fs.makeDirectory(directory, { recursive: true })
    for (const [path, target] of tree.symlinks) yield* fs.symlink(target, path)
    for (const [path, bytes] of tree.files) yield* fs.writeFile(path, bytes)
  }))
  return fs
}

/**
 * The memory FileSystem with a journal, and the durable tree when none of
 * the pending changes reached the disk (the first state enumerated).
 */
export const makeSimulator = (
  options: memory.MemoryFileSystemOptions & { readonly model?: CrashModel }
): { readonly fs: FileSystem.FileSystem; readonly durableTree: Effect.Effect<CrashedTree> } => {
  const journal = makeJournal()
  const fs = memory.make(options, journal.observer)
  const durableTree = Effect.sync(() => {
    let tree: CrashedTree = { files: new Map(), directories: new Set(["/"]), symlinks: new Map() }
    enumerate(
      journal,
      { log: journal.log.length, acknowledged: 0, calls: 0 },
      options.model ?? "posix",
      Number.POSITIVE_INFINITY,
      (state) => {
        tree = state.tree
        return false
      }
    )
    return tree
  })
  return { fs, durableTree }
}
