import { runCli } from './program.js';

// The exit status is what the action left in process.exitCode; a server keeps running.
process.exitCode = await runCli(process.argv.slice(2));
