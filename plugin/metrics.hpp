// An instance's counters in Prometheus's text exposition format (0.0.4), for
// node_exporter's textfile collector: with `metrics_file` set, the flusher
// thread writes them every `metrics_interval` (and once at start and at
// unload), never a hook call. The file is replaced whole: written under a
// temporary name in its directory, then renamed over the old one, so a
// reader never sees half of it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "counters.hpp"
#include "reason.hpp"

namespace mtalog {

struct MetricsSource {
    std::string path;               // the log file, as configured (the `file` label)
    const FileCounters *counters;
};

// Every family with its HELP and TYPE, one sample per file (and per reason
// for dropped records), labelled {stanza="...",file="..."}, where `stanza`
// is the stanza's instance name ("" for a plain `mtalog` stanza). Not
// `instance`: Prometheus sets that label on every scraped target, and would
// rename ours to exported_instance. The queue's gauges are per stanza.
[[nodiscard]] std::string render_metrics(std::string_view instance, const std::vector<MetricsSource> &files,
                                         std::size_t queue_waiting, std::size_t queue_capacity);

// mtalog_bounce_records_total{stanza,kind,class,name}: the records
// classified (those whose format shows their class), every class of both
// message kinds, zeros included; and mtalog_bounce_search_failures_total,
// the texts the rules' automaton could not search (out of its memory
// budget), which were classified without their text rules.
[[nodiscard]] std::string render_bounce_metrics(std::string_view instance, const BounceCounts &counts,
                                                std::uint64_t failed_searches);
// "bounces kind=<kind> <class>=<count> ..." per kind with any classified
// record, classes with a count only, then "bounce_search_failures=N" when
// N is not 0; "" when there is nothing.
[[nodiscard]] std::string render_bounce_stats(const BounceCounts &counts, std::uint64_t failed_searches);

// `text` as the whole of `path`, through a temporary name and rename(2);
// the file gets `mode`. Returns an error text on failure (nothing is left
// under the temporary name).
[[nodiscard]] std::optional<std::string> replace_file(const std::string &path, std::string_view text, unsigned mode);

// A label value as the exposition format wants it: \\, \" and \n escaped.
[[nodiscard]] std::string prometheus_label(std::string_view value);

} // namespace mtalog
