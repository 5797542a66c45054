#!/usr/bin/env node
// The `clinic` binary: runs the TypeScript sources through tsx (with the
// CLI's own tsconfig, for JSX), wherever it is started from.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/main.ts');
