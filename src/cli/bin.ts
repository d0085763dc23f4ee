#!/usr/bin/env node
import { installCleanupHandlers } from '../stream/atomic.js';
import { main } from './main.js';

installCleanupHandlers();
main(process.argv).then((code) => {
  process.exitCode = code;
});
