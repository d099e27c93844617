import { describe, expect, test } from '@jest/globals';
import { spawnReader } from './helpers.js';

describe('reader entry point', () => {
  test('invalid configuration: exit code 2, names the variable, never echoes a secret', async () => {
    const child = spawnReader({
      EVENTHUBS_CONNECTION_STRING: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=supersecretvalue',
      KAFKA_MAX_MESSAGE_BYTES: 'lots',
    });
    expect(await child.exited).toBe(2);
    const line = child.lines.find((l) => l.msg === 'invalid configuration');
    expect(line).toMatchObject({ level: 'error', variable: 'KAFKA_MAX_MESSAGE_BYTES' });
    expect(JSON.stringify(child.lines)).not.toContain('supersecretvalue');
  });
});
