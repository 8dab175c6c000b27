#!/usr/bin/env node
// The `wharf` command: runs the TypeScript CLI through tsx (a runtime dependency).
import { register } from 'tsx/esm/api';

register();
await import('../functions/cli/main.ts');
