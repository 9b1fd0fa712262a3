#!/usr/bin/env node
// The `coexist` command: runs the compiled CLI (dist/ is built by `npm run build`, which `npm install` runs).
import '../dist/cli/entry.js';
