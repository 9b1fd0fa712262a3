/** Process entry for running the CLI from source (`node --import tsx src/cli/entry.ts ...`). */
import { main } from './main.ts';

process.exitCode = await main(process.argv.slice(2));
