/** What `verify` reports: one finding per problem, each with a stable code. */
export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  /** Stable machine-readable code, e.g. `gpt.primary-header-crc`. */
  code: string;
  severity: Severity;
  /** One sentence a person can act on. */
  message: string;
  /** Where: `gpt`, `mbr`, `mbr.slice[1].bsd`, `gpt.partition[3]` ... */
  where?: string;
}

export function finding(severity: Severity, code: string, message: string, where?: string): Finding {
  return where === undefined ? { code, severity, message } : { code, severity, message, where };
}
