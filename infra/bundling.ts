/**
 * How the Lambda handler is bundled: one set of esbuild options shared by the CDK construct
 * (`RegistryFunction`, through NodejsFunction's `bundling:`) and by `bundleHandler`, which runs
 * esbuild's JS API with the same options for the local Function URL emulator
 * (`npm run start:lambda`). Change the bundle here, and both the deployed artefact and the one
 * run locally change together.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OutputFormat, type BundlingOptions } from 'aws-cdk-lib/aws-lambda-nodejs';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The TypeScript entry point exporting `handler`. */
export const HANDLER_ENTRY = path.join(REPO_ROOT, 'functions', 'adapters', 'lambda', 'handler.ts');

/**
 * Lets the ESM bundle load the CommonJS dependencies esbuild inlines (they call `require` for Node
 * built-ins, which ESM does not define).
 */
export const BUNDLE_REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/**
 * In the bundle, the AWS SDK clients the stores import are replaced by small API-compatible clients
 * (functions/storage/aws-lite/: SigV4 + the JSON and REST-XML protocols for exactly the operations
 * used), ~55 KB instead of ~480 KB of SDK: the handler loads faster on a cold start. Tests run the
 * same store contracts against both (test/storage/aws-lite-*.test.ts), and `npm run start:lambda`
 * runs this bundle. Local tools (CLI, tests) keep the real SDK, with its credential chain.
 */
const LITE = path.join(REPO_ROOT, 'functions', 'storage', 'aws-lite');
export const SDK_ALIASES: Record<string, string> = {
  '@aws-sdk/client-dynamodb': path.join(LITE, 'dynamodb.ts'),
  '@aws-sdk/client-kms': path.join(LITE, 'kms.ts'),
  '@aws-sdk/client-s3': path.join(LITE, 's3.ts'),
  '@aws-sdk/s3-request-presigner': path.join(LITE, 's3-presigner.ts'),
};

/** NodejsFunction `bundling:` options of the registry function. */
export const HANDLER_BUNDLING = {
  format: OutputFormat.ESM,
  target: 'node22',
  // Prefer the ES module builds (the AWS SDK ships both) so esbuild can tree-shake them.
  mainFields: ['module', 'main'],
  minify: true,
  sourceMap: true,
  // Stack traces only need the mappings; leaving the sources out keeps the asset small.
  sourcesContent: false,
  // Bundle everything, AWS SDK included: the versions we test against are the ones deployed,
  // not whatever SDK the Lambda runtime happens to carry.
  externalModules: [] as string[],
  banner: BUNDLE_REQUIRE_BANNER,
  esbuildArgs: Object.fromEntries(Object.entries(SDK_ALIASES).map(([pkg, file]) => [`--alias:${pkg}`, file])),
  // Always the local esbuild (a devDependency); never Docker.
  forceDockerBundling: false,
} satisfies BundlingOptions;

/**
 * The esbuild JS API equivalent of what NodejsFunction runs for HANDLER_BUNDLING
 * (`esbuild --bundle <entry> --platform=node --format=esm --target=node22 --outfile=index.mjs
 * --minify --sourcemap --sources-content=false --main-fields=module,main --banner:js=...
 * --alias:<sdk package>=<lite client> ...`).
 */
export function esbuildOptions(outdir: string, entry = HANDLER_ENTRY) {
  const b = HANDLER_BUNDLING;
  return {
    entryPoints: [entry],
    bundle: true,
    platform: 'node' as const,
    format: b.format === OutputFormat.ESM ? ('esm' as const) : ('cjs' as const),
    target: b.target,
    outfile: path.join(outdir, b.format === OutputFormat.ESM ? 'index.mjs' : 'index.js'),
    mainFields: [...b.mainFields],
    minify: b.minify,
    sourcemap: b.sourceMap,
    sourcesContent: b.sourcesContent,
    external: [...b.externalModules],
    banner: { js: b.banner },
    alias: { ...SDK_ALIASES },
    logLevel: 'warning' as const,
  };
}

/** Bundles the handler into `outdir` (index.mjs + index.mjs.map); returns the bundle's path. */
export async function bundleHandler(outdir: string, entry = HANDLER_ENTRY): Promise<string> {
  const { build } = await import('esbuild');
  const options = esbuildOptions(outdir, entry);
  await build(options);
  return options.outfile;
}
