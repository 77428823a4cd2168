/**
 * This package's child processes (see test-support/childProcess.ts): the
 * children import this package's built `dist/`.
 */
import { childProcessesOf } from "../../../test-support/childProcess.js"

export { type Child, kill } from "../../../test-support/childProcess.js"

export const { distIndex, packageRoot, requireBuild, spawnScript } = childProcessesOf(new URL("..", import.meta.url))
