/** Process entry for running the CLI from source (`node --import tsx src/cli/entry.ts ...`). */
import { main } from './main.ts';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// A command that failed has nothing left to do, but what it had opened (a listener that started before a
// later step of `serve` threw, a directory connection) would keep the process alive, serving half set up and
// never restarted by its supervisor. Standard output and error are synchronous on pipes and files here, and
// the logger flushes on exit.
if (code !== 0) process.exit(code);
