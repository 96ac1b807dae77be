#!/usr/bin/env node
/**
 * The entry point: turns on Node's on-disk compile cache before any other module loads,
 * then runs the command line (cli.ts). With the cache (Node 22.1+; os.tmpdir(), the
 * pod's /tmp), a restarted replica compiles none of its modules again: start-up time is
 * part of how fast a fresh replica takes its first job. Where the directory cannot be
 * written, Node goes on without it; Node 20 has no such cache.
 */
import module from 'node:module';

(module as { enableCompileCache?: () => unknown }).enableCompileCache?.();
await import('./cli.js');
