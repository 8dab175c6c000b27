/** The `wharf` command. Subcommands compose the same pieces the handlers use. */
import { serve } from './serve.js';

const USAGE = `usage: wharf <command>

commands:
  serve     run the registry (HOST, PORT, DATA_DIR, TLS_CERT, TLS_KEY, WHARF_BACKEND, ...: see README)`;

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  switch (command) {
    case 'serve':
      await serve();
      return -1; // keeps running until a signal
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      console.error(`wharf: unknown command ${command}\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error: unknown) => {
    console.error(`wharf: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
