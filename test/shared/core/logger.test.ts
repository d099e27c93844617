import { describe, expect, test } from '@jest/globals';
import { createLogger, memoryLogger } from '../../../src/shared/core/logger.js';

describe('logger', () => {
  test('memory logger keeps structured lines', () => {
    const log = memoryLogger();
    log.child({ a: 1 }).info('hello', { b: 2n });
    expect(log.lines[0]).toMatchObject({ level: 'info', msg: 'hello', a: 1, b: '2' });
  });
  test('redacts configured secrets and recognisable credentials in every line', () => {
    const lines: string[] = [];
    const log = createLogger({ secrets: ['s3cr3tvalue'], write: (l) => void lines.push(l) });
    log.warn('connect failed', { error: 'password=s3cr3tvalue at AccountKey=abc==' });
    expect(lines[0]).not.toContain('s3cr3tvalue');
    expect(lines[0]).not.toContain('abc==');
  });
  test('drops lines below the level', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', write: (l) => void lines.push(l) });
    log.info('quiet');
    log.error('loud');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['loud']);
  });
});
