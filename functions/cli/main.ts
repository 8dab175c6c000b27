/** The `wharf` command. Subcommands compose the same pieces the handlers use. */

const USAGE = `usage: wharf <command>

commands:
  serve     run the registry (HOST, PORT, DATA_DIR, TLS_CERT, TLS_KEY, WHARF_BACKEND, ...: see README)
  users     add | remove | list | passwd: users with passwords
  robots    create | revoke | list: robot accounts with generated secrets
  grant     PRINCIPAL PATTERN ACTIONS: let a user or robot pull/push/delete matching repositories
  revoke    PRINCIPAL PATTERN [ACTIONS]: take a grant back
  public    PATTERN | --remove PATTERN | --list: repositories anyone may pull
  iam       map | unmap | list: IAM principals (CI roles) to grants, for wharf login
  login     REGISTRY: get a 12-hour password with your AWS credentials and log docker in
  copy      SRC DST: copy an image (oci:DIR, oci-archive:FILE, docker-archive:FILE, docker://HOST/REPO:TAG)
  push      SRC HOST/REPO:TAG: copy an image into a registry
  pull      HOST/REPO:TAG DST: copy an image out of a registry
  bridge    --upstream URL [--listen HOST:PORT]: a local endpoint that pushes layers of any size straight to storage
  gc        [--dry-run] [--grace SECONDS] [--no-retention]: apply retention, then collect garbage
  retention [--dry-run]: delete the tags and manifests the retention policies expire
  policy    set | remove | list: immutable tags and retention rules per repository pattern

The admin and lifecycle commands work on the backend the environment names: DATA_DIR (embedded, the
default) or WHARF_BACKEND=aws with TABLE_NAME (gc: and BUCKET_NAME) and AWS credentials. Run
\`wharf <command> --help\`.`;

const ADMIN_COMMANDS = new Set(['users', 'robots', 'grant', 'revoke', 'public', 'iam']);
const LIFECYCLE_COMMANDS = new Set(['gc', 'retention', 'policy']);

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  if (command && ADMIN_COMMANDS.has(command)) return (await import('./admin.js')).runAdmin(argv);
  if (command && LIFECYCLE_COMMANDS.has(command)) return (await import('./lifecycle.js')).runLifecycleCommand(argv);
  switch (command) {
    case 'login':
      return (await import('./login.js')).runLogin(argv.slice(1));
    case 'copy':
    case 'push':
    case 'pull':
      return (await import('./copy.js')).runCopyCommand(command, argv.slice(1));
    case 'bridge':
      return (await import('./bridge.js')).runBridge(argv.slice(1));
    case 'serve':
      await (await import('./serve.js')).serve();
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
