import { fileBackend } from "./backends.js"
import { contract } from "./contract.js"

contract(fileBackend)
