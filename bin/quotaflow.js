#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader (no build step). See cli/main.ts.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
