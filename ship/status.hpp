// What the shipper reports: its counters and lag, as a status line on
// standard error, state_dir/status.json, and optionally Prometheus's text
// format (metrics_file).
#pragma once

#include <cstdint>
#include <string>

#include "ship_config.hpp"

namespace mtalog::ship {

struct Counters {
    std::uint64_t published = 0;    // messages sent (resends included)
    std::uint64_t shipped = 0;      // records acknowledged as stored
    std::uint64_t bytes = 0;        // their payload bytes
    std::uint64_t duplicates = 0;   // of them, answered "duplicate" (already stored: de-duplicated by the server)
    std::uint64_t failed = 0;       // publishes answered with an error, or never answered
    std::uint64_t found_stored = 0; // records a round found in the stream that this process had not seen acknowledged
    std::uint64_t restored = 0;     // records sent again because a round did not find them
    std::uint64_t rounds = 0;       // reads of the stream completed
    std::uint64_t round_messages = 0; // messages those reads went through (their cost)
    std::uint64_t incidents = 0;    // failed publishes, lost connections, leader changes, rollbacks
    std::uint64_t copies = 0;       // records seen stored at two sequences or more (each once)
    std::uint64_t skipped_lines = 0; // lines over max_line, never sent
};

struct Lag {
    std::uint64_t records = 0, bytes = 0, seconds = 0;
    std::uint64_t unverified = 0;    // acknowledged, not yet found by a round
    std::uint64_t unfinal_bytes = 0; // not final yet (looked for again until reconcile_window has passed)
};

struct StatusReport {
    const Settings &settings;
    const Counters &c;
    Lag lag;
    bool connected = false;
};

// Writes the status line, status.json (in `state_dir`) and the metrics file.
void report_status(const StatusReport &r, const std::string &status_path);

// The metrics file's text (exposed for tests of its form).
[[nodiscard]] std::string metrics_text(const StatusReport &r);

} // namespace mtalog::ship
