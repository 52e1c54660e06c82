// Settings are declared by the package that reads them: its environment variables, their
// defaults, bounds and what they mean, in one table beside the code. docs/configuration.md is
// generated from every owner's table (npm run docs:generate), and a test keeps the two in step.

import { MailpoolsError } from './errors.ts';

export type Env = Readonly<Record<string, string | undefined>>;

export interface SettingSpec {
  /** The value when the variable is unset or empty ('' for none). */
  readonly default: string;
  /** One sentence for the configuration page. */
  readonly doc: string;
  /** Inclusive bounds of an integer setting. */
  readonly min?: number;
  readonly max?: number;
}

export interface Settings<Name extends string> {
  /** Who reads them, as the configuration page groups them (`spam-classifier`, `DNS`, …). */
  readonly owner: string;
  readonly specs: Readonly<Record<Name, SettingSpec>>;
  /** The value as text: the variable, trimmed, else its default. */
  text(env: Env, name: Name): string;
  /** The value as an integer within its bounds; anything else fails with the variable's name. */
  integer(env: Env, name: Name): number;
}

export function settingError(name: string, problem: string): MailpoolsError {
  return new MailpoolsError('MAILPOOLS_ERR_CONFIG_INVALID', `${name} ${problem}.`, {
    hint: `Fix ${name} in the environment (see docs/configuration.md).`,
  });
}

export function defineSettings<Name extends string>(
  owner: string,
  specs: Readonly<Record<Name, SettingSpec>>,
): Settings<Name> {
  for (const [name, spec] of Object.entries(specs) as [Name, SettingSpec][])
    if ((spec.min === undefined) !== (spec.max === undefined))
      throw new Error(`${owner}: ${name} needs both min and max, or neither`);
  const text = (env: Env, name: Name): string => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? specs[name].default : value.trim();
  };
  return {
    owner,
    specs,
    text,
    integer(env, name) {
      const { min, max } = specs[name];
      if (min === undefined || max === undefined)
        throw new Error(`${owner}: ${name} is not an integer setting`);
      const raw = text(env, name);
      const value = Number(raw);
      if (!/^-?\d+$/.test(raw) || value < min || value > max)
        throw settingError(name, `must be an integer from ${min} to ${max}, got "${raw}"`);
      return value;
    },
  };
}
