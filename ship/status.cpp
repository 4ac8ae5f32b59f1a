#include "status.hpp"

#include <nlohmann/json.hpp>

#include "cursor.hpp"
#include "nats_link.hpp"

namespace mtalog::ship {

std::string metrics_text(const StatusReport &r)
{
    // node and stream are subject tokens: no label escaping needed.
    const std::string labels = "{node=\"" + r.settings.node + "\",stream=\"" + r.settings.stream + "\"} ";
    std::string out;
    const auto family = [&](const char *name, const char *type, const char *help, std::uint64_t value) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + labels +
               std::to_string(value) + "\n";
    };
    const Counters &c = r.c;
    family("mtalog_ship_records_shipped_total", "counter", "Records the stream acknowledged.", c.shipped);
    family("mtalog_ship_records_published_total", "counter", "Publishes sent, resends included.", c.published);
    family("mtalog_ship_shipped_bytes_total", "counter", "Bytes of acknowledged records.", c.bytes);
    family("mtalog_ship_failed_publishes_total", "counter", "Publishes answered with an error or not answered.",
           c.failed);
    family("mtalog_ship_duplicates_dropped_total", "counter",
           "Publishes the server dropped as duplicates (de-duplicated by message id).", c.duplicates);
    family("mtalog_ship_records_found_stored_total", "counter",
           "Records a read of the stream found stored that this process had not seen acknowledged.", c.found_stored);
    family("mtalog_ship_records_restored_total", "counter",
           "Records sent again because a read of the stream no longer found them.", c.restored);
    family("mtalog_ship_rounds_total", "counter", "Reads of the stream that checked what it holds.", c.rounds);
    family("mtalog_ship_round_messages_total", "counter", "Message headers those reads went through.",
           c.round_messages);
    family("mtalog_ship_incidents_total", "counter",
           "Failed publishes, lost connections, stream leader changes and rollbacks.", c.incidents);
    family("mtalog_ship_copies_in_stream_total", "counter",
           "Records seen stored at more than one sequence (readers de-duplicate them by id).", c.copies);
    family("mtalog_ship_skipped_lines_total", "counter", "Lines longer than max_line, never sent.", c.skipped_lines);
    family("mtalog_ship_lag_records", "gauge", "Records in the files not yet acknowledged.", r.lag.records);
    family("mtalog_ship_lag_bytes", "gauge", "Bytes in the files not yet acknowledged.", r.lag.bytes);
    family("mtalog_ship_lag_seconds", "gauge", "Seconds the shipper has been behind its files (0: caught up).",
           r.lag.seconds);
    family("mtalog_ship_unverified_records", "gauge", "Records acknowledged that no read of the stream has found yet.",
           r.lag.unverified);
    family("mtalog_ship_unfinal_bytes", "gauge",
           "Bytes of records not final yet: looked for again until reconcile_window has passed.", r.lag.unfinal_bytes);
    family("mtalog_ship_connected", "gauge", "1 while connected to the servers.", r.connected ? 1 : 0);
    return out;
}

void report_status(const StatusReport &r, const std::string &status_path)
{
    const Settings &s = r.settings;
    const Counters &c = r.c;
    const bool warn = s.lag_warning != 0 && r.lag.records >= s.lag_warning;
    say(std::string(warn ? "WARNING: lag above lag_warning (" + std::to_string(s.lag_warning) + "): " : "") +
        "node " + s.node + ": shipped " + std::to_string(c.shipped) + " (" + std::to_string(c.duplicates) +
        " duplicates dropped by the server, " + std::to_string(c.found_stored) + " found stored, " +
        std::to_string(c.restored) + " restored, " + std::to_string(c.failed) + " failed publishes, " +
        std::to_string(c.copies) + " copies in the stream), lag " + std::to_string(r.lag.records) + " records, " +
        std::to_string(r.lag.bytes) + " bytes, " + std::to_string(r.lag.seconds) + " s, " +
        std::to_string(r.lag.unverified) + " unverified" + (r.connected ? "" : "; not connected"));
    const nlohmann::json j = {{"node", s.node},
                              {"stream", s.stream},
                              {"shipped", c.shipped},
                              {"published", c.published},
                              {"bytes_shipped", c.bytes},
                              {"duplicates", c.duplicates},
                              {"failed_publishes", c.failed},
                              {"found_stored", c.found_stored},
                              {"restored", c.restored},
                              {"rounds", c.rounds},
                              {"round_messages", c.round_messages},
                              {"incidents", c.incidents},
                              {"copies_in_stream", c.copies},
                              {"skipped_lines", c.skipped_lines},
                              {"lag_records", r.lag.records},
                              {"lag_bytes", r.lag.bytes},
                              {"lag_seconds", r.lag.seconds},
                              {"unverified_records", r.lag.unverified},
                              {"unfinal_bytes", r.lag.unfinal_bytes},
                              {"lag_warning", warn},
                              {"connected", r.connected}};
    if (auto e = write_atomically(status_path, j.dump(1) + "\n", false))
        say("cannot write the status file: " + *e);
    if (!s.metrics_file.empty())
        if (auto e = write_atomically(s.metrics_file, metrics_text(r), false, 0644)) // node_exporter reads it
            say("cannot write metrics_file: " + *e);
}

} // namespace mtalog::ship
