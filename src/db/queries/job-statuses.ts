/** The statuses of jobs.status (migration 001), as the dashboard lists and counts them. */

/** Statuses a job can still move out of: counted exactly (up to the cap) in job_counts. */
export const ACTIVE_STATUSES = ['waiting', 'pending', 'queued', 'running'] as const;
export const FINAL_STATUSES = ['done', 'failed', 'cancelled'] as const;
export const ALL_STATUSES = [...ACTIVE_STATUSES, ...FINAL_STATUSES] as const;
export type JobStatus = (typeof ALL_STATUSES)[number];

export function isStatus(s: string): s is JobStatus {
  return (ALL_STATUSES as readonly string[]).includes(s);
}
