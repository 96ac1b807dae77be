/**
 * Keeps metric label values bounded whatever rows users insert: a type without a handler
 * is `unregistered` (a typo in a million rows must not make a million series), and queues
 * beyond the first MAX_QUEUE_LABELS seen are `other`.
 */
export const MAX_QUEUE_LABELS = 100;

export class MetricLabels {
  private readonly queues = new Set<string>();

  constructor(private readonly isKnownType: (type: string) => boolean) {}

  type(type: string): string {
    return this.isKnownType(type) ? type : 'unregistered';
  }

  queue(queue: string): string {
    if (this.queues.has(queue)) return queue;
    if (this.queues.size >= MAX_QUEUE_LABELS) return 'other';
    this.queues.add(queue);
    return queue;
  }
}
