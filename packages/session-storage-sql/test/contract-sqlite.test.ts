import { sqliteBackend } from "./backends.js"
import { contract } from "./contract.js"

contract(sqliteBackend)
