// `mtalog-ship tail`: reads the fleet's records from the stream through a
// durable consumer and writes each record once (see tail_state.hpp), to
// standard output or to one file per node and record type.
#pragma once

#include <string>

#include "ship_config.hpp"

namespace mtalog::ship {

struct TailOptions {
    std::string durable = "mtalog-tail";
    std::string subject;  // default: <prefix>.>
    std::string out_dir;  // one file per node and type instead of stdout
    std::string state;    // default: <out_dir>/.tail-<durable>.state, or <state_dir>/tail-<durable>.state
    long long count = -1; // stop after this many records written (-1: never)
    int idle_ms = -1;     // stop after this long without a record (-1: never)
    long long forget_after_s = 30LL * 86400; // keys unused this long leave the state
};

int run_tail(const Settings &settings, const TailOptions &options);

} // namespace mtalog::ship
