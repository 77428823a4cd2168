#!/usr/bin/env node
import * as AtomicWrite from "../AtomicWrite.js"
import { runCommand } from "../internal/runCommand.js"

runCommand("atomic-write", "0.1.0", AtomicWrite.command, AtomicWrite.describe)
