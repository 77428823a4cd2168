#!/usr/bin/env node
import * as IntentSessions from "../IntentSessions.js"
import { runCommand } from "../internal/runCommand.js"

runCommand("intent-sessions", "0.1.0", IntentSessions.command, IntentSessions.describe)
