/**
 * Vitest setup file (vitest.config.ts): after each test file, remove the folders its tests made
 * with tempDir(). Without it a full run leaves gigabytes under /tmp (slot images of 700 MB among them).
 */
import { afterAll } from 'vitest';
import { removeTempDirs } from './golden.js';

afterAll(removeTempDirs);
