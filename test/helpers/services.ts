// External services for the suites that need them (PostgreSQL, Redis). `scripts/services.sh
// start` runs throw-away ones; without them a suite is skipped with a one-line notice, except
// under CI=true, where a missing service fails the run instead of hiding a gap.

/** The URL in `variable` when it starts with `scheme`, else undefined (or a throw under CI). */
export function serviceUrl(
  variable: 'DATABASE_URL' | 'REDIS_URL',
  scheme: string,
): string | undefined {
  const url = process.env[variable];
  if (url?.startsWith(scheme)) return url;
  if (process.env.CI === 'true')
    throw new Error(
      `${variable} must name a ${scheme}// server when CI=true (see scripts/services.sh)`,
    );
  console.warn(
    `skipping: set ${variable}=${scheme}//… to run this suite (scripts/services.sh start)`,
  );
  return undefined;
}
