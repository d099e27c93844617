/**
 * Typed configuration helpers: trim, default, and fail fast naming the variable
 * (after powertools' `envUtils`).
 */
import { ConfigError } from '../errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

export function getString(env: Env, name: string, defaultValue?: string): string {
  const value = raw(env, name) ?? defaultValue;
  if (value === undefined) throw new ConfigError(`Missing required setting ${name}`);
  return value;
}

export function getOptionalString(env: Env, name: string): string | undefined {
  return raw(env, name);
}

export function getInt(env: Env, name: string, defaultValue: number, range: { min?: number; max?: number } = {}): number {
  const value = raw(env, name);
  if (value === undefined) return defaultValue;
  const parsed = Number(value);
  if (!Number.isInteger(parsed)) throw new ConfigError(`Setting ${name} must be an integer, got "${value}"`);
  if (range.min !== undefined && parsed < range.min) throw new ConfigError(`Setting ${name} must be >= ${range.min}, got ${parsed}`);
  if (range.max !== undefined && parsed > range.max) throw new ConfigError(`Setting ${name} must be <= ${range.max}, got ${parsed}`);
  return parsed;
}

export function getOneOf<T extends string>(env: Env, name: string, allowed: readonly T[], defaultValue: T): T {
  const value = raw(env, name) ?? defaultValue;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`Setting ${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

export function getBool(env: Env, name: string, defaultValue: boolean): boolean {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return defaultValue;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(`Setting ${name} must be true or false, got "${value}"`);
}

export function getList(env: Env, name: string, defaultValue: readonly string[]): string[] {
  const value = raw(env, name);
  if (value === undefined) return [...defaultValue];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function getJson<T>(env: Env, name: string, defaultValue: T): T {
  const value = raw(env, name);
  if (value === undefined) return defaultValue;
  try {
    return JSON.parse(value) as T;
  } catch (error) {
    throw new ConfigError(`Setting ${name} is not valid JSON`, error);
  }
}
