// mtalog-ship's settings: its own stanza (servers, stream, node, state,
// credentials) and the files to ship, read from the mtalog config it names,
// so no log path is written twice.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "mtalog_options.hpp"

namespace mtalog::ship {

// One log file mtalog writes, as the shipper needs it.
struct ShipFile {
    std::string path;       // as configured (relative to the working directory)
    std::string format;     // "mainlog", "json", "csv", "template"
    std::string header;     // the line a new file starts with ("" for none)
    std::string only_type;  // the record type when the file carries one kind only, else ""
    mtacfg::Location where; // where the mtalog config names it
};

struct Credentials {
    std::string user, password, token;
};

struct Settings {
    std::string config_path;   // this file
    std::string mtalog_config; // resolved against config_path's directory
    std::vector<std::string> servers;
    std::string stream = "MTALOG";
    std::string subject_prefix = "mtalog";
    std::string node; // default: the host name's first label
    bool node_defaulted = false;
    std::string state_dir = "var/ship";
    std::string credentials_file;           // resolved against config_path's directory
    std::optional<Credentials> credentials; // read from credentials_file
    std::string tls_ca, tls_cert, tls_key;
    std::size_t max_pending = 4096; // unacknowledged messages at most
    std::chrono::milliseconds ack_wait{5000};
    std::chrono::milliseconds status_interval{10000};
    std::uint64_t lag_warning = 100000; // records behind; 0: off
    std::string metrics_file;           // Prometheus text, resolved against config_path's directory; "": none
    std::chrono::milliseconds rotated_idle{2000};
    std::chrono::milliseconds retry_max{10000};
    std::chrono::milliseconds reconcile_interval{5000}; // how often a round reads back what was acknowledged since
    std::chrono::milliseconds reconcile_window{180000};  // how long an acknowledged record is looked for again after an incident
    std::size_t max_line = 1 << 20;                       // longer lines are not records: reported, counted, skipped
    bool create_stream = true;
    int replicas = 1;
    std::chrono::milliseconds duplicate_window{120000};
    std::vector<ShipFile> files;
};

// Reads and validates `path`; "file:line:column: ..." on the first error.
// Does not connect anywhere.
[[nodiscard]] std::variant<Settings, std::string> load_settings(const std::string &path);

// A one-line summary for --check.
[[nodiscard]] std::string describe(const Settings &s);

} // namespace mtalog::ship
