/** The snapshot plan: a pure function of slot state, stored progress and snapshot mode (no PostgreSQL). */
import { describe, expect, test } from '@jest/globals';
import type { SnapshotMode } from '../../../src/reader/config.js';
import { parseLsn } from '../../../src/reader/lsn.js';
import { freshSnapshotVersion, planSnapshot } from '../../../src/reader/snapshot/plan.js';
import type { SnapshotState, TableProgress } from '../../../src/reader/snapshot/progress.js';

const noSlot = { exists: false, restartLsn: null };
const slot = { exists: true, restartLsn: '0/3000028' };
const table = (name: string, done: boolean, rows = 0): TableProgress => ({ schema: 's', table: name, lastKey: done ? ['9'] : null, rows, done });
const stored = (versionLsn: string | null, ...tables: TableProgress[]): SnapshotState => ({ versionLsn, tables });
const modes: SnapshotMode[] = ['initial', 'never', 'initial_only'];

describe('snapshot plan', () => {
  test('no slot: create it, exporting its snapshot unless the mode is never', () => {
    expect(planSnapshot({ mode: 'initial', slot: noSlot, stored: null })).toEqual({ step: { kind: 'fresh', exportSnapshot: true }, afterwards: 'stream' });
    expect(planSnapshot({ mode: 'never', slot: noSlot, stored: null })).toEqual({ step: { kind: 'fresh', exportSnapshot: false }, afterwards: 'stream' });
    expect(planSnapshot({ mode: 'initial_only', slot: noSlot, stored: null })).toEqual({
      step: { kind: 'fresh', exportSnapshot: true },
      afterwards: 'drop-slot-and-exit',
    });
  });

  test('no slot but progress left from an earlier slot: a fresh snapshot all the same (the old progress is replanned)', () => {
    const old = stored('0/1000000', table('a', true, 10), table('b', false, 3));
    expect(planSnapshot({ mode: 'initial', slot: noSlot, stored: old }).step).toEqual({ kind: 'fresh', exportSnapshot: true });
  });

  test('slot exists and a table is not done: resume with the stored version', () => {
    const plan = planSnapshot({ mode: 'initial', slot, stored: stored('0/2FFFFFF', table('a', true, 10), table('b', false, 3), table('c', false)) });
    expect(plan).toEqual({ step: { kind: 'resume', versionLsn: parseLsn('0/2FFFFFF'), tablesDone: 1, tablesTotal: 3 }, afterwards: 'stream' });
  });

  test('resume without a stored version (crash between creating the slot and storing it): just below the restart point', () => {
    const plan = planSnapshot({ mode: 'initial_only', slot, stored: stored(null, table('a', false)) });
    expect(plan).toEqual({ step: { kind: 'resume', versionLsn: parseLsn('0/3000028') - 1n, tablesDone: 0, tablesTotal: 1 }, afterwards: 'drop-slot-and-exit' });
  });

  test('slot exists and every table is done, or nothing is stored: nothing to do', () => {
    for (const mode of modes) {
      expect(planSnapshot({ mode, slot, stored: stored('0/1', table('a', true), table('b', true)) }).step).toEqual({ kind: 'none' });
      expect(planSnapshot({ mode, slot, stored: null }).step).toEqual({ kind: 'none' });
    }
  });

  test('mode never ignores unfinished stored progress', () => {
    expect(planSnapshot({ mode: 'never', slot, stored: stored('0/1', table('a', false)) })).toEqual({ step: { kind: 'none' }, afterwards: 'stream' });
  });

  test('fresh snapshot version: just below the restart point, else below the consistent point', () => {
    expect(freshSnapshotVersion('0/3000028', '0/3000060')).toBe(parseLsn('0/3000028') - 1n);
    expect(freshSnapshotVersion(null, '0/3000060')).toBe(parseLsn('0/3000060') - 1n);
  });
});
