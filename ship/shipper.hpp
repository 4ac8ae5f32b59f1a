// mtalog-ship's work: every record line of the configured files becomes one
// JetStream message, exactly once.
//
// - Each record's id is <node>.<file key>.<offset> (Nats-Msg-Id): a copy
//   within the stream's duplicate window is normally dropped by the server
//   (not reliably across a leader change, so nothing is sent again without
//   a read-back).
// - The cursor moves only over acknowledged records and is written durably.
// - At every start and after every failed publish, the shipper reads back
//   what the stream holds of this node's messages after the cursor's
//   scan_from and never sends those again: retries after an outage longer
//   than the duplicate window are harmless too.
#pragma once

#include <atomic>
#include <string>

#include "ship_config.hpp"

namespace mtalog::ship {

struct RunOptions {
    bool once = false;  // stop when every file is shipped to its end (tests,
                        // catch-up runs)
    bool audit = false; // read back all of this node's messages first: ship again
                        // what the stream lacks, delete copies it holds twice
                        // (after a broker incident)
};

// Runs until SIGTERM/SIGINT (or, with `once`, until caught up); SIGUSR1
// prints the status at once. Returns the exit status.
int run_shipper(const Settings &settings, const RunOptions &options);

// `mtalog-ship tail`: reads the stream through a durable consumer.
struct TailOptions {
    std::string durable = "mtalog-tail";
    std::string subject;  // default: <prefix>.>
    std::string out_dir;  // one file per node and type instead of stdout
    long long count = -1; // stop after this many records (-1: never)
    int idle_ms = -1;     // stop after this long without a record (-1: never)
};
int run_tail(const Settings &settings, const TailOptions &options);

} // namespace mtalog::ship
