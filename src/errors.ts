/** Errors a user can cause or fix. Each carries a stable `code`; the CLI prints
 * its message as one line and exits with `exitCode`, never with a stack trace. */
export class BnError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'BnError';
  }
}

/** Native errors arrive as plain Errors with a `code`; keep the code, lose the stack. */
export function asBnError(err: unknown): BnError {
  if (err instanceof BnError) return err;
  const e = err as { code?: unknown; message?: unknown };
  if (e && typeof e.code === 'string' && typeof e.message === 'string') return new BnError(e.code, e.message);
  return new BnError('INTERNAL', `internal error: ${e && typeof e.message === 'string' ? e.message : String(err)}`, 70);
}
