// Native addons (os-lock, behind FileLock) are built by node-gyp, which by
// default downloads Node's headers from the internet. When the running Node
// ships its own headers (Debian's /usr/include/node, official tarballs, nvm),
// point node-gyp at them so that an install works offline. pnpm passes only a
// few environment variables to build scripts; `extraEnv` is how to add one.
// An explicit npm_config_nodedir wins.
const fs = require("node:fs")
const path = require("node:path")

const nodedir = () => {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir
  const prefix = path.resolve(path.dirname(process.execPath), "..")
  return fs.existsSync(path.join(prefix, "include", "node", "node.h")) ? prefix : undefined
}

module.exports = {
  hooks: {
    updateConfig(config) {
      const dir = nodedir()
      if (dir === undefined) return config
      return { ...config, extraEnv: { ...config.extraEnv, npm_config_nodedir: dir } }
    }
  }
}
