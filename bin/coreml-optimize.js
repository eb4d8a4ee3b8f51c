#!/usr/bin/env node
// Thin launcher: the CLI is compiled from src/cli to dist/cli.
import { main } from '../dist/cli/main.js';

main(process.argv).then(
  (code) => process.exit(code ?? 0),
  (err) => {
    console.error(`coreml-optimize: ${err?.message ?? err}`);
    process.exit(1);
  },
);
