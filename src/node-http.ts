/**
 * `node:http` through require, not import. On Node 22+ an ESM import of `node:http`
 * builds a facade of every export, and reading its lazy WebSocket getters loads Node's
 * bundled undici: ~45 ms of start-up on Node 24 (measured: 52 ms import, 7 ms require).
 */
import { createRequire } from 'node:module';

const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export const createServer: typeof import('node:http').createServer = http.createServer;
