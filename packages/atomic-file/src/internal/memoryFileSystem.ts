/**
 * An in-memory POSIX-like file system behind `@effect/platform`'s
 * `FileSystem`: inodes, directories, symbolic links, modes and owners, open
 * files with positions and append mode, and the same `SystemError`s (with
 * the errno in `cause.code`) that the Node layer gives. Paths are POSIX and
 * absolute after resolution against "/".
 */
import { BadArgument, type PlatformError, SystemError, type SystemErrorReason } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

interface FileNode {
  readonly kind: "File"
  data: Uint8Array
  size: number
  mode: number
  uid: number
  gid: number
  mtime: Date
  readonly ino: number
}
interface DirectoryNode {
  readonly kind: "Directory"
  readonly entries: Map<string, Node>
  mode: number
  uid: number
  gid: number
  mtime: Date
  readonly ino: number
}
interface LinkNode {
  readonly kind: "SymbolicLink"
  readonly target: string
  mode: number
  uid: number
  gid: number
  mtime: Date
  readonly ino: number
}
type Node = FileNode | DirectoryNode | LinkNode

const REASONS: Record<string, SystemErrorReason> = {
  ENOENT: "NotFound",
  EACCES: "PermissionDenied",
  EEXIST: "AlreadyExists",
  EISDIR: "BadResource",
  ENOTDIR: "BadResource",
  ELOOP: "BadResource",
  EBUSY: "Busy"
}

const MESSAGES: Record<string, string> = {
  ENOENT: "no such file or directory",
  EEXIST: "file already exists",
  EISDIR: "illegal operation on a directory",
  ENOTDIR: "not a directory",
  ENOTEMPTY: "directory not empty",
  EINVAL: "invalid argument",
  ELOOP: "too many symbolic links encountered",
  EBADF: "bad file descriptor"
}

/** A `SystemError` shaped like the Node layer's, errno in `cause.code`. */
export const systemError = (method: string, code: string, path: string | number): PlatformError =>
  new SystemError({
    module: "FileSystem",
    method,
    reason: REASONS[code] ?? "Unknown",
    pathOrDescriptor: path,
    syscall: method,
    description: `${code}: ${MESSAGES[code] ?? "error"}, ${method} '${path}'`,
    cause: Object.assign(new Error(`${code}: ${MESSAGES[code] ?? "error"}`), { code })
  })

const MAX_HOPS = 40

export interface MemoryFileSystemOptions {
  /** uid and gid of new files; default 0 */
  readonly uid?: number
  readonly gid?: number
  /** default 0o022 */
  readonly umask?: number
}

/**
 * A change to the file system, described by inode numbers (what a journal
 * of pending writes needs), with a path for messages (`label`). `node`
 * announces a new inode; it is reachable only once an entry links it.
 */
export type MemoryFileSystemEvent =
  | {
    readonly _tag: "Node"
    readonly ino: number
    readonly type: "File" | "Directory" | "SymbolicLink"
    readonly target?: string
    readonly label: string
  }
  | {
    readonly _tag: "Write"
    readonly ino: number
    readonly offset: number
    readonly bytes: Uint8Array
    readonly label: string
  }
  | { readonly _tag: "Truncate"; readonly ino: number; readonly length: number; readonly label: string }
  | {
    readonly _tag: "Link"
    readonly directory: number
    readonly name: string
    readonly ino: number
    readonly label: string
  }
  | { readonly _tag: "Unlink"; readonly directory: number; readonly name: string; readonly label: string }
  | {
    readonly _tag: "Rename"
    readonly fromDirectory: number
    readonly fromName: string
    readonly toDirectory: number
    readonly toName: string
    readonly ino: number
    readonly label: string
  }
  | { readonly _tag: "Sync"; readonly ino: number; readonly label: string }

/**
 * Told of every change as it happens in the live tree (`event`), and of the
 * end of every call of a FileSystem or File method, failed or not (`call`).
 */
export interface MemoryFileSystemObserver {
  readonly event: (event: MemoryFileSystemEvent) => void
  readonly call: (method: string, target: string) => void
}

export const make = (
  options: MemoryFileSystemOptions = {},
  observer?: MemoryFileSystemObserver
): FileSystem.FileSystem => {
  const emit = (event: MemoryFileSystemEvent) => observer?.event(event)
  const uid = options.uid ?? 0
  const gid = options.gid ?? 0
  const umask = options.umask ?? 0o022
  let nextIno = 1
  let nextFd = 3
  const newDirectory = (mode: number): DirectoryNode => ({
    kind: "Directory",
    entries: new Map(),
    mode: mode & ~umask,
    uid,
    gid,
    mtime: new Date(),
    ino: nextIno++
  })
  const root = newDirectory(0o755)
  emit({ _tag: "Node", ino: root.ino, type: "Directory", label: "/" })

  const split = (path: string): Array<string> => path.split("/").filter((part) => part.length > 0 && part !== ".")

  class Failure {
    constructor(readonly code: string) {}
  }

  /**
   * Walks `path`; returns the parent directory, the last name and the node
   * there (if any). Links in the middle are always followed; the last one
   * only when `follow`.
   */
  const lookup = (
    path: string,
    follow: boolean,
    hops = 0
  ): { parent: DirectoryNode; name: string; node: Node | undefined } => {
    if (path.includes("\0")) throw new Failure("EINVAL")
    const parts: Array<string> = []
    for (const part of split(path)) {
      if (part === "..") parts.pop()
      else parts.push(part)
    }
    if (parts.length === 0) return { parent: root, name: "", node: root }
    let directory = root
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i] as string
      const node = directory.entries.get(name)
      const last = i === parts.length - 1
      if (last && (!follow || node === undefined || node.kind !== "SymbolicLink")) {
        return { parent: directory, name, node }
      }
      if (node === undefined) throw new Failure("ENOENT")
      if (node.kind === "SymbolicLink") {
        if (hops >= MAX_HOPS) throw new Failure("ELOOP")
        const base = "/" + parts.slice(0, i).join("/")
        const rest = parts.slice(i + 1).join("/")
        const target = node.target.startsWith("/") ? node.target : `${base}/${node.target}`
        return lookup(rest.length > 0 ? `${target}/${rest}` : target, follow, hops + 1)
      }
      if (node.kind !== "Directory") throw new Failure("ENOTDIR")
      directory = node
    }
    throw new Failure("ENOENT")
  }

  // Under an observer (the crash simulator) every call yields, so that the
  // calls of concurrent fibers interleave as they would on a real disk.
  const yieldAfter = <A>(effect: Effect.Effect<A, PlatformError>) =>
    observer === undefined ? effect : Effect.zipLeft(effect, Effect.yieldNow())

  const run = <A>(
    method: string,
    path: string | number,
    body: () => A,
    label: string = String(path)
  ): Effect.Effect<A, PlatformError> =>
    yieldAfter(Effect.suspend(() => {
      try {
        return Effect.succeed(body())
      } catch (error) {
        if (error instanceof Failure) return Effect.fail(systemError(method, error.code, path))
        return Effect.die(error)
      } finally {
        observer?.call(method, label)
      }
    }))

  /** Adds an entry to `parent` for a new node, and tells the observer. */
  const linkNew = (parent: DirectoryNode, name: string, node: Node, label: string) => {
    parent.entries.set(name, node)
    emit({
      _tag: "Node",
      ino: node.ino,
      type: node.kind,
      ...(node.kind === "SymbolicLink" ? { target: node.target } : {}),
      label
    })
    emit({ _tag: "Link", directory: parent.ino, name, ino: node.ino, label })
  }

  const existing = (path: string, follow = true): Node => {
    const { node } = lookup(path, follow)
    if (node === undefined) throw new Failure("ENOENT")
    return node
  }

  const info = (node: Node): FileSystem.File.Info => ({
    type: node.kind,
    mtime: Option.some(node.mtime),
    atime: Option.some(node.mtime),
    birthtime: Option.some(node.mtime),
    dev: 1,
    ino: Option.some(node.ino),
    mode: node.mode | (node.kind === "Directory" ? 0o040000 : node.kind === "File" ? 0o100000 : 0o120000),
    nlink: Option.some(1),
    uid: Option.some(node.uid),
    gid: Option.some(node.gid),
    rdev: Option.some(0),
    size: FileSystem.Size(node.kind === "File" ? node.size : node.kind === "SymbolicLink" ? node.target.length : 4096),
    blksize: Option.some(FileSystem.Size(4096)),
    blocks: Option.some(node.kind === "File" ? Math.ceil(node.size / 512) : 8)
  })

  const ensureCapacity = (file: FileNode, size: number) => {
    if (size <= file.data.length) return
    const grown = new Uint8Array(Math.max(size, file.data.length * 2, 64))
    grown.set(file.data.subarray(0, file.size))
    file.data = grown
  }

  const writeAt = (file: FileNode, position: number, bytes: Uint8Array, label: string) => {
    if (bytes.length > 0) emit({ _tag: "Write", ino: file.ino, offset: position, bytes: bytes.slice(), label })
    ensureCapacity(file, position + bytes.length)
    if (position > file.size) file.data.fill(0, file.size, position)
    file.data.set(bytes, position)
    file.size = Math.max(file.size, position + bytes.length)
    file.mtime = new Date()
  }

  const setLength = (file: FileNode, length: number, label: string) => {
    emit({ _tag: "Truncate", ino: file.ino, length, label })
    ensureCapacity(file, length)
    if (length > file.size) file.data.fill(0, file.size, length)
    file.size = length
    file.mtime = new Date()
  }

  const makeFile = (
    node: FileNode,
    fd: number,
    append: boolean,
    readable: boolean,
    writable: boolean,
    label: string
  ) => {
    let position = 0
    let closed = false
    const guard = <A>(method: string, body: () => A) =>
      run(method, fd, () => {
        if (closed) throw new Failure("EBADF")
        return body()
      }, label)
    const read = (buffer: Uint8Array) =>
      guard("read", () => {
        if (!readable) throw new Failure("EBADF")
        const count = Math.max(0, Math.min(buffer.length, node.size - position))
        buffer.set(node.data.subarray(position, position + count))
        position += count
        return FileSystem.Size(count)
      })
    const write = (buffer: Uint8Array) =>
      guard("write", () => {
        if (!writable) throw new Failure("EBADF")
        const at = append ? node.size : position
        writeAt(node, at, buffer, label)
        if (!append) position = at + buffer.length
        return FileSystem.Size(buffer.length)
      })
    const file: FileSystem.File = {
      [FileSystem.FileTypeId]: FileSystem.FileTypeId,
      fd: FileSystem.FileDescriptor(fd),
      stat: guard("stat", () => info(node)),
      seek: (offset, from) =>
        Effect.sync(() => {
          position = from === "start" ? Number(offset) : position + Number(offset)
          observer?.call("seek", label)
        }),
      sync: guard("sync", () => emit({ _tag: "Sync", ino: node.ino, label })),
      read,
      readAlloc: (size) =>
        guard("read", () => {
          if (!readable) throw new Failure("EBADF")
          const count = Math.max(0, Math.min(Number(size), node.size - position))
          if (count === 0) return Option.none<Uint8Array>()
          const out = node.data.slice(position, position + count)
          position += count
          return Option.some(out)
        }),
      truncate: (length) =>
        guard("truncate", () => {
          if (!writable) throw new Failure("EINVAL")
          setLength(node, Number(length ?? 0), label)
        }),
      write,
      writeAll: (buffer) => Effect.asVoid(write(buffer))
    }
    return { file, close: () => (closed = true) }
  }

  const open: FileSystem.FileSystem["open"] = (path, openOptions) => {
    const flag = openOptions?.flag ?? "r"
    const mode = openOptions?.mode ?? 0o666
    return Effect.acquireRelease(
      run("open", path, () => {
        const { name, node, parent } = lookup(path, true)
        const create = flag !== "r" && flag !== "r+"
        const exclusive = flag.includes("x")
        let target: Node | undefined = node
        if (target === undefined) {
          if (!create) throw new Failure("ENOENT")
          if (name === "") throw new Failure("EISDIR")
          target = {
            kind: "File",
            data: new Uint8Array(0),
            size: 0,
            mode: mode & ~umask,
            uid,
            gid,
            mtime: new Date(),
            ino: nextIno++
          }
          linkNew(parent, name, target, path)
        } else if (exclusive) {
          throw new Failure("EEXIST")
        }
        const writable = flag !== "r"
        if (target.kind === "Directory") {
          if (writable) throw new Failure("EISDIR")
          return { node: target, handle: undefined }
        }
        if (target.kind !== "File") throw new Failure("ELOOP")
        // a file just created is empty already: no truncation to journal
        if (flag.startsWith("w") && node !== undefined) setLength(target, 0, path)
        const readable = flag === "r" || flag.includes("+")
        return { node: target, handle: makeFile(target, nextFd++, flag.startsWith("a"), readable, writable, path) }
      }),
      (opened) =>
        Effect.sync(() => {
          opened.handle?.close()
          observer?.call("close", path)
        })
    ).pipe(Effect.map((opened) => {
      if (opened.handle !== undefined) return opened.handle.file
      // a directory opened for reading: enough to fsync it
      const directory = opened.node
      const fd = nextFd++
      return {
        [FileSystem.FileTypeId]: FileSystem.FileTypeId,
        fd: FileSystem.FileDescriptor(fd),
        stat: run("stat", fd, () => info(directory), path),
        seek: () => Effect.void,
        sync: run("sync", fd, () => emit({ _tag: "Sync", ino: directory.ino, label: path }), path),
        read: () => Effect.fail(systemError("read", "EISDIR", path)),
        readAlloc: () => Effect.fail(systemError("read", "EISDIR", path)),
        truncate: () => Effect.fail(systemError("truncate", "EISDIR", path)),
        write: () => Effect.fail(systemError("write", "EISDIR", path)),
        writeAll: () => Effect.fail(systemError("write", "EISDIR", path))
      } satisfies FileSystem.File
    }))
  }

  const makeDirectory: FileSystem.FileSystem["makeDirectory"] = (path, directoryOptions) =>
    run("makeDirectory", path, () => {
      const mode = directoryOptions?.mode ?? 0o777
      if (directoryOptions?.recursive) {
        let current = ""
        for (const part of split(path)) {
          current += `/${part}`
          const { name, node, parent } = lookup(current, true)
          if (node === undefined) linkNew(parent, name, newDirectory(mode), current)
          else if (node.kind !== "Directory") throw new Failure("ENOTDIR")
        }
        return
      }
      const { name, node, parent } = lookup(path, false)
      if (node !== undefined) throw new Failure("EEXIST")
      linkNew(parent, name, newDirectory(mode), path)
    })

  const remove: FileSystem.FileSystem["remove"] = (path, removeOptions) =>
    run("remove", path, () => {
      const { name, node, parent } = lookup(path, false)
      if (node === undefined) {
        if (removeOptions?.force) return
        throw new Failure("ENOENT")
      }
      if (node.kind === "Directory" && !removeOptions?.recursive) throw new Failure("EISDIR")
      parent.entries.delete(name)
      emit({ _tag: "Unlink", directory: parent.ino, name, label: path })
    })

  const rename: FileSystem.FileSystem["rename"] = (from, to) =>
    run("rename", from, () => {
      const source = lookup(from, false)
      if (source.node === undefined) throw new Failure("ENOENT")
      const destination = lookup(to, false)
      if (destination.node?.kind === "Directory") {
        if (source.node.kind !== "Directory") throw new Failure("EISDIR")
        if (destination.node.entries.size > 0) throw new Failure("ENOTEMPTY")
      } else if (destination.node !== undefined && source.node.kind === "Directory") {
        throw new Failure("ENOTDIR")
      }
      source.parent.entries.delete(source.name)
      destination.parent.entries.set(destination.name, source.node)
      emit({
        _tag: "Rename",
        fromDirectory: source.parent.ino,
        fromName: source.name,
        toDirectory: destination.parent.ino,
        toName: destination.name,
        ino: source.node.ino,
        label: `${from} -> ${to}`
      })
    }, `${from} -> ${to}`)

  const readFile: FileSystem.FileSystem["readFile"] = (path) =>
    run("readFile", path, () => {
      const node = existing(path)
      if (node.kind === "Directory") throw new Failure("EISDIR")
      if (node.kind !== "File") throw new Failure("ELOOP")
      return node.data.slice(0, node.size)
    })

  const writeFile: FileSystem.FileSystem["writeFile"] = (path, data, writeOptions) =>
    Effect.scoped(Effect.flatMap(
      open(path, { flag: writeOptions?.flag ?? "w", mode: writeOptions?.mode ?? 0o666 }),
      (file) => file.writeAll(data)
    ))

  const unsupported = (method: string) => () =>
    Effect.fail(new BadArgument({ module: "FileSystem", method, description: `${method} is not supported in memory` }))

  let tempCounter = 0
  const makeTempDirectory: FileSystem.FileSystem["makeTempDirectory"] = (tempOptions) =>
    Effect.gen(function*() {
      const base = tempOptions?.directory ?? "/tmp"
      yield* makeDirectory(base, { recursive: true })
      const path = `${base}/${tempOptions?.prefix ?? ""}${(tempCounter++).toString(36)}${Date.now().toString(36)}`
      yield* makeDirectory(path, { mode: 0o700 })
      return path
    })

  return FileSystem.make({
    access: (path) => run("access", path, () => void existing(path)),
    copy: unsupported("copy"),
    copyFile: (from, to) => Effect.flatMap(readFile(from), (data) => writeFile(to, data)),
    chmod: (path, mode) =>
      run("chmod", path, () => {
        existing(path).mode = mode & 0o7777
      }),
    chown: (path, newUid, newGid) =>
      run("chown", path, () => {
        const node = existing(path)
        node.uid = newUid
        node.gid = newGid
      }),
    link: unsupported("link"),
    makeDirectory,
    makeTempDirectory,
    makeTempDirectoryScoped: (tempOptions) =>
      Effect.acquireRelease(makeTempDirectory(tempOptions), (path) => Effect.orDie(remove(path, { recursive: true }))),
    makeTempFile: unsupported("makeTempFile"),
    makeTempFileScoped: unsupported("makeTempFileScoped"),
    open,
    readDirectory: (path) =>
      run("readDirectory", path, () => {
        const node = existing(path)
        if (node.kind !== "Directory") throw new Failure("ENOTDIR")
        return [...node.entries.keys()]
      }),
    readFile,
    readLink: (path) =>
      run("readLink", path, () => {
        const node = existing(path, false)
        if (node.kind !== "SymbolicLink") throw new Failure("EINVAL")
        return node.target
      }),
    realPath: unsupported("realPath"),
    remove,
    rename,
    stat: (path) => run("stat", path, () => info(existing(path))),
    symlink: (target, path) =>
      run("symlink", path, () => {
        const { name, node, parent } = lookup(path, false)
        if (node !== undefined) throw new Failure("EEXIST")
        linkNew(parent, name, {
          kind: "SymbolicLink",
          target,
          mode: 0o777,
          uid,
          gid,
          mtime: new Date(),
          ino: nextIno++
        }, path)
      }),
    truncate: (path, length) =>
      run("truncate", path, () => {
        const node = existing(path)
        if (node.kind !== "File") throw new Failure("EISDIR")
        setLength(node, Number(length ?? 0), path)
      }),
    utimes: unsupported("utimes"),
    watch: () =>
      Stream.fail(
        new BadArgument({ module: "FileSystem", method: "watch", description: "watch is not supported in memory" })
      ),
    writeFile
  })
}
