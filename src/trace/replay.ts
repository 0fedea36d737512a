/** A trace file back through the live pipeline: the same model context (from
 * the header and the symbol tables), the same correlation, the same traversals. */
import { modelContextFrom } from '../capture/context';
import { PipelineSinks, TraversalPipeline } from '../capture/pipeline';
import { DecodedBatch, EventKind, toBigInt, toNumber, Uint64 } from '../decode';
import { decodeBatchWire } from '../wire';
import { decodeRecordBatchWire } from '../wireRecords';
import { bpftrace_net as pb } from '../gen/bpftrace_net';
import type { ContextData } from '../capture/context';
import type { Link } from '../topology/links';
import { contextFromHeader, linksFromRows, planFromRow, ruleTextsFromRows } from './format';
import { decodeRuleBatch } from '../capture/rules';
import { RULES_HOLD_NS } from '../capture/pipeline';
import { RuleIndex } from '../model/rules';
import { ProbeHistory } from '../model/probes';
import { FRAME_TAG, TraceFileError, TraceReader } from './reader';

export interface ReplaySinks extends PipelineSinks {
  header?(h: pb.ITraceHeader): void;
  /** The device table changed mid-trace (a container started). */
  interfaces?(links: Link[]): void;
  /** Every batch as read, before correlation (export counts losses from them). */
  batch?(b: DecodedBatch): void;
  /** True once nobody wants more (the reader of the output went away): replay stops there. */
  stopped?(): boolean;
}

export interface ReplayResult {
  header: pb.ITraceHeader | undefined;
  trailer: pb.ITraceTrailer | undefined;
  traversals: number;
  events: number;
  lost: number;
  lostPerCpu: number[];
  /** Packets shed whole while recording (the ring was nearly full), from the trailer. */
  shed: number;
  /** What was wrong with the file, after its valid part was replayed. */
  error?: TraceFileError;
}

/** Matches the live capture's idle timeout, so packets close the same way. */
const IDLE_TIMEOUT_NS = 2e9;


function readSymbols(file: string): Map<bigint, string> {
  const symbols = new Map<bigint, string>();
  const reader = new TraceReader(file);
  try {
    for (const { frame } of reader.frames((tag) => tag === FRAME_TAG.symbols)) {
      for (const s of frame.symbols?.symbols ?? []) {
        symbols.set(toBigInt(s.address as Uint64), s.name ?? '');
      }
    }
  } catch {
    // The replay pass reports the problem, after replaying what precedes it.
  } finally {
    reader.close();
  }
  return symbols;
}

export function replayTrace(file: string, sinks: ReplaySinks): ReplayResult {
  const symbols = readSymbols(file);
  const result: ReplayResult = { header: undefined, trailer: undefined, traversals: 0, events: 0, lost: 0, lostPerCpu: [], shed: 0 };
  const reader = new TraceReader(file);
  let pipeline: TraversalPipeline | undefined;
  let context: ContextData | undefined;
  let probes: ProbeHistory | undefined;
  let rules: RuleIndex | undefined;
  let maxTs = 0;
  try {
    for (const { frame, batch: batchBytes, batchOffset, records } of reader.frames()) {
      if (sinks.stopped?.()) break;
      if (frame.header) {
        result.header = frame.header;
        sinks.header?.(frame.header);
        context = contextFromHeader(frame.header);
        probes = new ProbeHistory(context.probePlans);
        const history = probes;
        rules = frame.header.rules ? new RuleIndex(() => history.latest?.ruleset) : undefined;
        pipeline = new TraversalPipeline({ ...modelContextFrom(context, (a) => symbols.get(a), probes), rules }, IDLE_TIMEOUT_NS, sinks,
          rules ? RULES_HOLD_NS : 0);
      } else if (frame.interfaces && context) {
        const links = new Map(context.links.map((l) => [l.ifindex, l]));
        for (const l of linksFromRows(frame.interfaces.interfaces ?? [])) links.set(l.ifindex, l);
        context = { ...context, links: [...links.values()] };
        pipeline!.setContext({ ...modelContextFrom(context, (a) => symbols.get(a), probes), rules });
        sinks.interfaces?.(context.links);
      } else if (frame.rules && rules) {
        pipeline!.pushRules(decodeRuleBatch(frame.rules));
      } else if (frame.ruleTexts && rules) {
        rules.texts = ruleTextsFromRows(frame.ruleTexts.rules ?? []);
      } else if (frame.probes && context) {
        // The ruleset changed mid-trace: the history every traversal reads from.
        probes!.add(planFromRow(frame.probes));
      } else if (batchBytes) {
        let batch: DecodedBatch;
        try {
          batch = records ? decodeRecordBatchWire(batchBytes) : decodeBatchWire(batchBytes);
        } catch (err) {
          throw new TraceFileError('TRACE_CORRUPT', file, batchOffset ?? 0, `expected a valid ${records ? 'record' : 'event'} batch: ${(err as Error).message}`);
        }
        for (const e of batch.events) {
          if (e.kind !== EventKind.LOST) result.events++;
          if (e.ts > maxTs) maxTs = e.ts;
        }
        result.lost = batch.lost;
        sinks.batch?.(batch);
        pipeline!.push(batch);
        pipeline!.expire(maxTs);
      } else if (frame.loss) {
        result.lost = toNumber(frame.loss.lost as Uint64);
        result.lostPerCpu = (frame.loss.lostPerCpu ?? []).map((n) => toNumber(n as Uint64));
      } else if (frame.trailer) {
        result.trailer = frame.trailer;
        result.lost = toNumber(frame.trailer.lost as Uint64);
        result.lostPerCpu = (frame.trailer.lostPerCpu ?? []).map((n) => toNumber(n as Uint64));
        result.shed = toNumber(frame.trailer.shed as Uint64);
      }
    }
  } catch (err) {
    if (!(err instanceof TraceFileError)) throw err;
    result.error = err;
  } finally {
    reader.close();
  }
  pipeline?.flush();
  result.traversals = pipeline?.traversals ?? 0;
  return result;
}
