/** Synthetic kernel events as the decoder yields them: through the real
 * native encoder and the protobufjs decoder. */
import { decodeBatch, KernelEvent } from '../../src/decode';
import { native } from '../../src/native';
import { RawEvent, rawEvents } from '../../bench/synthetic';

export function throughPipe(events: RawEvent[], lost = 0): KernelEvent[] {
  return decodeBatch(native().encodeBatch(rawEvents(events), lost, 0)).events;
}
