// The test projects of the monorepo, one per package. The root
// vitest.config.ts passes this list as `test.projects` (Vitest 3.2 warns when
// it loads a workspace file by itself).
export default ["packages/*/vitest.config.ts"]
