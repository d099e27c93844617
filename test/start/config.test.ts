import { describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { loadStartConfig, repoRoot } from '../../src/start/config.js';

describe('npm start settings', () => {
  it('defaults: .pg-cdc at the repo root, 5 changes per second, a status line every 5 s, the page on 8790', () => {
    expect(loadStartConfig([], {})).toEqual({
      stateDir: path.join(repoRoot, '.pg-cdc'),
      fresh: false,
      ordersPerSec: 5,
      statusIntervalMs: 5000,
      statusPort: 8790,
      help: false,
    });
    expect(loadStartConfig([], { START_STATUS_PORT: '0' }).statusPort).toBe(0);
    expect(() => loadStartConfig([], { START_STATUS_PORT: '70000' })).toThrow(/START_STATUS_PORT/);
  });

  it('takes --rate over START_ORDERS_PER_SEC, and --fresh', () => {
    const config = loadStartConfig(['--fresh', '--rate', '50'], { START_ORDERS_PER_SEC: '7', START_STATE_DIR: '/var/tmp/x', START_STATUS_INTERVAL_MS: '1000' });
    expect(config).toMatchObject({ fresh: true, ordersPerSec: 50, stateDir: '/var/tmp/x', statusIntervalMs: 1000 });
    expect(loadStartConfig([], { START_ORDERS_PER_SEC: '0' }).ordersPerSec).toBe(0);
  });

  it('refuses a bad rate, naming the flag or the variable, and an unknown flag', () => {
    expect(() => loadStartConfig(['--rate', 'fast'], {})).toThrow('--rate: expected an integer between 0 and 10000, got "fast"');
    expect(() => loadStartConfig([], { START_ORDERS_PER_SEC: '-1' })).toThrow('START_ORDERS_PER_SEC: expected an integer between 0 and 10000, got "-1"');
    expect(() => loadStartConfig(['--frsh'], {})).toThrow('npm start flags: expected --fresh, --rate N or --help, got "--frsh"');
  });
});
