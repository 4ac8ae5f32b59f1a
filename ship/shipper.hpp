// mtalog-ship's work: every record line of the configured files becomes one
// JetStream message with the id <node>.<file key>.<offset>, and stays in the
// stream: a record the stream acknowledged and later lost is found by the
// shipper's own reads of the stream (rounds) and sent again. See
// docs/fleet.md for the three promises and which part keeps each.
#pragma once

#include <string>

#include "ship_config.hpp"

namespace mtalog::ship {

struct RunOptions {
    bool once = false;  // stop when every file is shipped to its end and verified
    bool audit = false; // check every record of the files still on disk against the
                        // whole stream, not only the recent past (after a broker incident)
};

// Runs until SIGTERM/SIGINT (or, with `once`, until caught up); SIGUSR1
// prints the status at once. Returns the exit status.
int run_shipper(const Settings &settings, const RunOptions &options);

} // namespace mtalog::ship
