import { NodeContext } from "@effect/platform-node"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { decodeLine, type InterviewSession } from "../src/InterviewSession.js"
import * as SessionStorage from "../src/SessionStorage.js"

export const FIXTURES = {
  "intent-sessions.jsonl": { sessions: 310 },
  "interview-sessions.jsonl": { sessions: 5 },
  "interview-test-session.jsonl": { sessions: 2 }
} as const

export const fixturePath = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url))
export const fixtureBytes = (name: string) => new Uint8Array(readFileSync(fixturePath(name)))

const base = (() => {
  const line = readFileSync(fixturePath("interview-sessions.jsonl"), "utf8").split("\n")[0] ?? ""
  const decoded = decodeLine(line)
  if (Either.isLeft(decoded)) throw new Error(decoded.left)
  return decoded.right
})()

/** A valid session with this id; `note` goes into raw_notes. */
export const session = (id: string, note = ""): InterviewSession => ({
  ...base,
  id,
  raw_notes: note,
  answers: [],
  gaps: [],
  conflicts: []
})

/** A scoped temp directory. */
export const tempDirectory = Effect.flatMap(
  FileSystem.FileSystem,
  (fs) => fs.makeTempDirectoryScoped({ prefix: "session-storage-test-" })
)

/** A store at `path` over the real file system, with the platform beside it. */
export const storeLayer = (options: SessionStorage.SessionStorageOptions) =>
  Layer.provideMerge(SessionStorage.layer(options), NodeContext.layer)

/** Runs `body` with a fresh store on `path`: a new layer, as a new process would. */
export const withStore = <A, E, R>(
  options: SessionStorage.SessionStorageOptions,
  body: (store: SessionStorage.SessionStorage) => Effect.Effect<A, E, R>
) => Effect.provide(Effect.flatMap(SessionStorage.SessionStorage, body), SessionStorage.layer(options))

export const readText = (file: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(file))
export const readBytes = (file: string) => Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFile(file))
