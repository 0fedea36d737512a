/** --rules in a recording: which of the rule tracer's batches go to the file. */
import { decodeRuleBatch } from '../capture/rules';

/** RuleBatch field 1 (trace messages, length-delimited) comes first when there is one. */
const TRACE_MESSAGE_TAG = 0x0a;
/** Batches after the last recorded events whose watermark is still kept. */
const KEPT_AFTER_EVENTS = 3;
const IDLE_INTERVAL_MS = 1000;

/** The tracer sends a batch every 50 ms even when idle, only to say how far its socket was read
 * (`drainedTo`): replay releases a recorded packet once a watermark passes its last hop. So a
 * batch with trace messages or a new loss count is always kept; a bare watermark only while
 * recorded packets may still wait for one (events were recorded within the last few batches),
 * and otherwise once a second. Idle, that is 12 bytes a second instead of 240. */
export class RuleBatchFilter {
  private lost = 0;
  private events = 0;
  /** Batches since the recorded events last changed; none recorded yet counts as quiet. */
  private quietBatches = KEPT_AFTER_EVENTS;
  private keptAt = -Infinity;

  /** `recordedEvents`: the capture's events so far; `nowMs`: a monotonic clock. */
  keep(batch: Uint8Array, recordedEvents: number, nowMs: number): boolean {
    if (recordedEvents !== this.events) {
      this.events = recordedEvents;
      this.quietBatches = 0;
    } else {
      this.quietBatches++;
    }
    let keep = batch.length > 0 && batch[0] === TRACE_MESSAGE_TAG;
    if (!keep) {
      const lost = decodeRuleBatch(batch).lost;
      keep = lost !== this.lost || this.quietBatches < KEPT_AFTER_EVENTS || nowMs - this.keptAt >= IDLE_INTERVAL_MS;
      this.lost = lost;
    }
    if (keep) this.keptAt = nowMs;
    return keep;
  }
}
