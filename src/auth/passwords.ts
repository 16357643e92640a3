// Password hashing (argon2id) and the common-password check. Plain passwords never leave this
// module's arguments: they are not stored, logged or returned.
import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { readFileSync } from 'node:fs';

const ARGON2ID = 2 as Algorithm;

export interface PasswordPolicy {
  memoryCostKiB: number;
  timeCost: number;
}

/** Hashes and verifies passwords; constant work for unknown users via a dummy hash. */
export class Passwords {
  private readonly options;
  /** Computed at start, so the first unknown-user login costs one argon2 run like the others. */
  private readonly dummyHash: Promise<string>;

  constructor(policy: PasswordPolicy) {
    this.options = {
      algorithm: ARGON2ID,
      memoryCost: policy.memoryCostKiB,
      timeCost: policy.timeCost,
      parallelism: 1,
    };
    this.dummyHash = this.hash('dummy password that matches no account');
  }

  hash(password: string): Promise<string> {
    return hash(password, this.options);
  }

  /** Verifies against `passwordHash`, or against a dummy hash when there is no account. */
  async verify(passwordHash: string | undefined, password: string): Promise<boolean> {
    if (passwordHash === undefined) {
      await verify(await this.dummyHash, password);
      return false;
    }
    return verify(passwordHash, password);
  }
}

// Top 10,000 passwords of at least 8 characters from the frequency-ranked list that zxcvbn ships
// (MIT licence), lower-cased. `npm run build` copies it beside the compiled module.
let common: Set<string> | undefined;

/** True when the password, ignoring case, is in the shipped list of common passwords. */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(
    readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter(Boolean),
  );
  return common.has(password.toLowerCase());
}
