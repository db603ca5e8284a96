/** How the check's passes report a problem; the list is capped so a wrecked file system stays readable. */
import type { UfsProblem } from './read-types.js';

export type Report = (code: string, severity: UfsProblem['severity'], message: string) => void;

export const MAX_PROBLEMS = 1000;

export function problemList(): { problems: UfsProblem[]; report: Report } {
  const problems: UfsProblem[] = [];
  const report: Report = (code, severity, message) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ code, severity, message });
  };
  return { problems, report };
}
