// Runs the CLI from source (tests use this through tsx; the published launcher is bin/freehold.js).
import { main } from "./main.js";

await main(process.argv);
