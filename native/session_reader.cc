// TraceSession's reader thread: inside the traced netns, it owns the Tracer
// (load, attach, poll, detach), turns ring records into protobuf batches, writes
// them to the trace file or hands them to JS, and applies probe moves between
// batches.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>
#include <unordered_set>

#include "encoder.h"
#include "records.h"
#include "session_limits.h"
#include "trace_session.h"

using namespace session_limits;

// Reader thread.
void TraceSession::Run(TracerConfig config) {
  TraceFileWriter file;
  if (config.trace_fd >= 0) {
    std::string why = file.Adopt(config.trace_fd);
    if (!why.empty()) {
      Send(new Message{Message::kError, {}, {"TRACE_FILE", why}});
      tsfn_.Release();
      return;
    }
  }
  uint32_t mode = config.mode;
  bool deliver = config.deliver_batches;
  uint64_t config_max_packets = config.max_packets;
  Tracer tracer(std::move(config));
  TraceError error;
  if (!tracer.Start(&error)) {
    Send(new Message{Message::kError, {}, error});
    tsfn_.Release();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(tracer_mutex_);
    tracer_ = &tracer;
  }
  Message* started = new Message{Message::kStarted, {}, {}};
  started->notices = tracer.notices;
  Send(started);

  BatchEncoder encoder;
  bool recording = file.is_open();
  // Packets and top modes write each kernel record to the file as it is (headers once, hops
  // as words); events are still unfolded from them for JS, the counts and the symbols.
  RecordEncoder records;
  bool records_to_file = recording && mode != BN_MODE_EVENTS;
  bool encode_events = deliver || !records_to_file;
  size_t batch_events = 0;  // appended since the last flush
  std::unordered_set<uint64_t> addresses;
  // --count N: exactly the first N packets whose first hop was seen, every hop of them.
  uint64_t max_packets = config_max_packets;
  std::unordered_set<uint64_t> admitted;
  auto admit = [&](uint64_t packet_id, bool first_hop) {
    if (!max_packets) return true;
    if (first_hop && admitted.size() < max_packets) admitted.insert(packet_id);
    return admitted.count(packet_id) > 0;
  };
  // Kernel addresses (rx_handlers, drop locations) go to the file's symbol table once each.
  auto note_address = [&](uint64_t aux, uint8_t kind) {
    if (recording && aux && kind != BN_EV_NF_TABLE && kind != BN_EV_NF_HOOK_ENTER && addresses.insert(aux).second) {
      std::lock_guard<std::mutex> lock(frames_mutex_);
      new_addresses_.push_back(aux);
    }
  };
  auto append = [&](const bn_event& e, const bn_snap* snap, uint64_t signature) {
    if (!admit(e.packet_id, e.seq == 0)) return;
    if (encode_events) encoder.Append(e, snap, signature);
    batch_events++;
    if (e.seq == 0) packets_++;
    note_address(e.aux, e.kind);
  };
  // Records arrive when packets end, so a flood's copies come before the packet
  // they were copied from: unfolded hops are put back in time order per batch,
  // as events mode delivers them.
  struct UnfoldedHop {
    bn_event event;
    int snap;  // index into snaps, or -1
    uint64_t signature;
  };
  std::vector<UnfoldedHop> unfolded;
  std::vector<bn_snap> snaps;
  auto keep_hop = [&](const bn_event& e, const bn_snap* snap, uint64_t signature) {
    int index = -1;
    if (snap) {
      index = static_cast<int>(snaps.size());
      snaps.push_back(*snap);
    }
    unfolded.push_back({e, index, signature});
  };
  auto encode_unfolded = [&]() {
    std::stable_sort(unfolded.begin(), unfolded.end(),
                     [](const UnfoldedHop& a, const UnfoldedHop& b) { return a.event.ts < b.event.ts; });
    for (const UnfoldedHop& h : unfolded) append(h.event, h.snap >= 0 ? &snaps[h.snap] : nullptr, h.signature);
    unfolded.clear();
    snaps.clear();
  };
  // Where each record from the kernel is expanded (about 3 KB: not on the stack per record).
  auto expanded = std::make_unique<bn_record>();
  tracer.on_event = [&](const void* data, size_t size) {
    if (mode == BN_MODE_EVENTS) {
      if (size < sizeof(bn_event)) return 0;
      const bn_event* e = static_cast<const bn_event*>(data);
      const bn_snap* snap = e->has_snap && size >= sizeof(bn_event) + sizeof(bn_snap)
                                ? reinterpret_cast<const bn_snap*>(e + 1)
                                : nullptr;
      append(*e, snap, 0);
      return batch_events >= kMaxEventsPerBatch ? kBatchFull : 0;
    }
    bn_record& r = *expanded;
    if (!ExpandRecord(data, size, &r)) return 0;
    if (!encode_events) {
      // Only to the file (record): the kernel's record as it is, nothing unfolded.
      if (!admit(r.packet_id, r.first_seq == 0)) return 0;
      records.Append(r);
      batch_events += r.n_hops;
      if (r.first_seq == 0 && r.n_hops) packets_++;
      for (uint32_t i = 0; i < r.n_hops; i++) note_address(r.hops[i].aux, r.hops[i].kind);
      return batch_events >= kMaxEventsPerBatch ? kBatchFull : 0;
    }
    UnfoldRecord(r, keep_hop);
    if (records_to_file && admit(r.packet_id, r.first_seq == 0)) records.Append(r);
    return unfolded.size() >= kMaxEventsPerBatch ? kBatchFull : 0;
  };

  // Each packet that lost events says how many, as an event of its own (BN_EV_LOST); not
  // counted as events (the kernel's).
  size_t loss_reports = 0;
  auto append_packet_losses = [&]() {
    if (mode != BN_MODE_EVENTS) return;
    timespec now_ts;
    clock_gettime(CLOCK_MONOTONIC, &now_ts);
    for (const auto& [packet_id, count] : tracer.TakePacketLosses()) {
      bn_event e = {};
      e.kind = BN_EV_LOST;
      e.packet_id = packet_id;
      e.seq = UINT16_MAX;
      e.aux = count;
      e.ts = static_cast<uint64_t>(now_ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(now_ts.tv_nsec);
      size_t before = batch_events;
      append(e, nullptr, 0);
      loss_reports += batch_events - before;
    }
  };
  uint64_t sequence = 0, lost = 0;
  bool write_failed = false;
  // One batch: to the trace file when recording, else to JS.
  auto flush = [&](bool lost_changed) {
    encode_unfolded();
    if (batch_events == 0 && !lost_changed) return;
    events_ += batch_events - loss_reports;
    batch_events = 0;
    loss_reports = 0;
    batches_++;
    uint64_t seq = sequence++;
    std::vector<uint8_t> batch = encode_events ? encoder.Finish(lost, seq) : std::vector<uint8_t>{};
    if (recording && !write_failed) {
      if (records_to_file) WriteToFile(file, kFrameRecords, records.Finish(lost, seq), lost_changed ? lost : UINT64_MAX, &write_failed);
      else WriteToFile(file, kFrameBatch, batch, lost_changed ? lost : UINT64_MAX, &write_failed);
    }
    if (deliver) Send(new Message{Message::kBatch, std::move(batch), {}});
  };

  auto lost_read_at = std::chrono::steady_clock::now();
  while (!stopping_ && !write_failed) {
    int rc = 0;
    if (paused_) std::this_thread::sleep_for(std::chrono::milliseconds(kPollTimeoutMs));
    else rc = tracer.Poll(kPollTimeoutMs);
    if (rc < 0 && rc != -EINTR && rc != kBatchFull) {
      Send(new Message{Message::kError, {}, {"RINGBUF_POLL", "reading the ring buffer failed: " + ErrnoText(rc)}});
      break;
    }
    auto now = std::chrono::steady_clock::now();
    bool lost_changed = false;
    if (rc == 0 || now - lost_read_at >= kLostReadInterval) {
      uint64_t total = RecordLost(tracer.LostEventsPerCpu());
      shed_ = tracer.PacketsShed();
      lost_changed = total != lost;
      lost = total;
      lost_read_at = now;
      if (lost_changed) append_packet_losses();
    }
    bool frames_waiting;
    {
      std::lock_guard<std::mutex> lock(frames_mutex_);
      frames_waiting = !pending_frames_.empty();
    }
    if (recording && frames_waiting && batch_events == 0 && unfolded.empty()) {
      flush(true);  // an empty batch carries the frames out
    } else {
      flush(lost_changed);
    }
    // After the frames (a trace file names the new probes before their first event).
    std::vector<std::vector<NetfilterAttachment>> moves;
    {
      std::lock_guard<std::mutex> lock(frames_mutex_);
      if (!recording || pending_frames_.empty()) moves.swap(pending_netfilter_);
    }
    for (const auto& wanted : moves) {
      TraceError why;
      tracer.SetNetfilter(wanted, &why);
      Send(new Message{Message::kNetfilterMoved, {}, why});
    }
  }
  // Detach, then drain what the kernel already handed over and the packets
  // still being assembled, so nothing traced is lost.
  tracer.Detach();
  while (tracer.Poll(0) == kBatchFull) flush(false);
  tracer.DrainAssembling();
  lost = RecordLost(tracer.LostEventsPerCpu());
  shed_ = tracer.PacketsShed();
  append_packet_losses();
  flush(true);
  {
    std::lock_guard<std::mutex> lock(tracer_mutex_);
    tracer_ = nullptr;
  }
  tracer.Destroy();
  file.Close();
  {
    // Files queued for a rotation that never came (a write failed): ours to close.
    std::lock_guard<std::mutex> lock(frames_mutex_);
    for (const PendingFrame& f : pending_frames_)
      if (f.next_fd >= 0) close(f.next_fd);
    pending_frames_.clear();
  }
  tsfn_.Release();
}

// Reader thread: a batch (or, packets mode, a record batch), then the loss counters when they changed (lost !=
// UINT64_MAX), then the frames JS queued (symbol tables).
void TraceSession::WriteToFile(TraceFileWriter& file, TraceFrameField kind, const std::vector<uint8_t>& batch, uint64_t lost,
                               bool* failed) {
  bool ok = file.WriteFrame(kind, batch);
  if (ok && lost != UINT64_MAX) {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    uint64_t now_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count());
    ok = file.WriteFrame(kFrameLoss, TraceFileWriter::LossCounters(lost, LostPerCpu(), now_ns));
  }
  std::vector<PendingFrame> frames;
  {
    std::lock_guard<std::mutex> lock(frames_mutex_);
    frames.swap(pending_frames_);
  }
  for (auto& f : frames) {
    if (f.next_fd >= 0) {
      // A failed write still moves on: the new file's fd is ours to close either way.
      file.Switch(f.next_fd);
      f.next_fd = -1;
    } else if (f.prefixed) {
      ok = ok && file.WriteRaw(f.bytes);
    } else {
      ok = ok && file.WriteEncodedFrame(f.bytes);
    }
  }
  bytes_written_ = file.bytes_written();
  if (!ok) {
    *failed = true;
    Send(new Message{Message::kError, {}, {"TRACE_FILE", "writing the trace file failed: " + ErrnoText(-file.last_errno())}});
  }
}

std::vector<uint64_t> TraceSession::LostPerCpu() const {
  std::lock_guard<std::mutex> lock(lost_mutex_);
  return lost_per_cpu_;
}

// Reader thread: keeps the per-CPU counts for stats(), returns their sum.
uint64_t TraceSession::RecordLost(std::vector<uint64_t> per_cpu) {
  uint64_t total = 0;
  for (uint64_t n : per_cpu) total += n;
  std::lock_guard<std::mutex> lock(lost_mutex_);
  lost_per_cpu_ = std::move(per_cpu);
  lost_ = total;
  return total;
}
