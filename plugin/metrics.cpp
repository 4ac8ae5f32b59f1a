#include "metrics.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log_file.hpp"

namespace mtalog {

namespace {

using Counter = std::atomic<std::uint64_t> FileCounters::*;

// (cppcheck 2.10 does not see the uses through kFamilies, hence the suppressions.)
struct Family {
    Counter counter;
    // cppcheck-suppress unusedStructMember
    std::string_view name; // Prometheus family name
    // cppcheck-suppress unusedStructMember
    std::string_view reason; // the `reason` label, for the dropped family
    // cppcheck-suppress unusedStructMember
    std::string_view help;
};

// Every FileCounters counter, once (checked below against the list in
// counters.hpp); a family's rows follow each other.
constexpr std::array kFamilies{
    Family{&FileCounters::accepted, "mtalog_records_accepted_total", "",
           "Records taken in, not refused by the overflow policy."},
    Family{&FileCounters::written, "mtalog_records_written_total", "", "Records written whole to the file."},
    Family{&FileCounters::dropped_overflow, "mtalog_records_dropped_total", "overflow",
           "Records dropped, by reason: overflow (queue full), write_error (the file could not be written), "
           "internal (out of memory)."},
    Family{&FileCounters::dropped_write_error, "mtalog_records_dropped_total", "write_error", ""},
    Family{&FileCounters::dropped_internal, "mtalog_records_dropped_total", "internal", ""},
    Family{&FileCounters::write_errors, "mtalog_write_errors_total", "", "Failed write(2) calls (ENOSPC, EIO, ...)."},
    Family{&FileCounters::bytes, "mtalog_written_bytes_total", "", "Bytes written, header lines included."},
    Family{&FileCounters::reopens, "mtalog_reopens_total", "", "Reopens done for log_reopen."},
    Family{&FileCounters::reopen_errors, "mtalog_reopen_errors_total", "",
           "Reopens that failed (the old file stayed in use)."},
    Family{&FileCounters::missed_reopens, "mtalog_missed_reopens_total", "",
           "Times the path was found moved or deleted without a reopen, and reopened."},
    Family{&FileCounters::detached_records, "mtalog_detached_records_total", "",
           "Records written to a moved or deleted file before that was noticed."},
    Family{&FileCounters::crossed_reopen, "mtalog_crossed_reopen_records_total", "",
           "Records accepted before a reopen moved to the new file: the old one still failed after overflow_timeout."},
    Family{&FileCounters::torn_records, "mtalog_torn_records_total", "",
           "Records a crash cut short found at the end of a file when it was opened, and cut off."},
    Family{&FileCounters::rotations, "mtalog_rotations_total", "", "Built-in rotations."},
    Family{&FileCounters::rotation_errors, "mtalog_rotation_errors_total", "", "Built-in rotations that failed."},
    Family{&FileCounters::compressed, "mtalog_compressed_files_total", "", "Rotated files compressed."},
    Family{&FileCounters::compress_errors, "mtalog_compress_errors_total", "",
           "Rotated files that could not be compressed (left as they were)."},
};

#define MTALOG_COUNT_ONE(name, meaning) +1
static_assert(kFamilies.size() == 0 MTALOG_FILE_COUNTERS(MTALOG_COUNT_ONE), "every file counter is a metric");
#undef MTALOG_COUNT_ONE

void gauge(std::string &out, std::string_view name, std::string_view help, std::string_view instance,
           std::size_t value)
{
    out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name).append(" gauge\n");
    out.append(name).append("{stanza=\"").append(prometheus_label(instance)).append("\"} ");
    out.append(std::to_string(value)).append("\n");
}

} // namespace

std::string prometheus_label(std::string_view value)
{
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string render_metrics(std::string_view instance, const std::vector<MetricsSource> &files,
                           std::size_t queue_waiting, std::size_t queue_capacity)
{
    std::string out;
    const std::string stanza_label = "stanza=\"" + prometheus_label(instance) + "\"";
    for (std::size_t i = 0; i < kFamilies.size();) {
        // One family: its rows, each with every file.
        const std::string_view name = kFamilies[i].name;
        out.append("# HELP ").append(name).append(" ").append(kFamilies[i].help).append("\n");
        out.append("# TYPE ").append(name).append(" counter\n");
        std::size_t end = i;
        while (end < kFamilies.size() && kFamilies[end].name == name)
            ++end;
        for (const MetricsSource &file : files)
            for (std::size_t k = i; k < end; ++k) {
                out.append(name).append("{").append(stanza_label);
                out.append(",file=\"").append(prometheus_label(file.path)).append("\"");
                if (!kFamilies[k].reason.empty())
                    out.append(",reason=\"").append(kFamilies[k].reason).append("\"");
                out.append("} ");
                out.append(std::to_string((file.counters->*kFamilies[k].counter).load(std::memory_order_relaxed)));
                out.append("\n");
            }
        i = end;
    }
    gauge(out, "mtalog_queue_waiting_records", "Records (admission units) waiting in the asynchronous queue.",
          instance, queue_waiting);
    gauge(out, "mtalog_queue_capacity_records", "The queue_size option: what may wait before the overflow policy.",
          instance, queue_capacity);
    return out;
}

namespace {

constexpr std::array<std::pair<std::size_t, std::string_view>, 2> kBounceKinds{
    {{BounceCounts::kind_index(RecordKind::attempt), "attempt"},
     {BounceCounts::kind_index(RecordKind::permanent_failure), "permanent_failure"}}};

} // namespace

std::string render_bounce_metrics(std::string_view instance, const BounceCounts &counts,
                                  std::uint64_t failed_searches)
{
    std::string out = "# HELP mtalog_bounce_records_total Records classified, by kind and bounce class (only records "
                      "whose format shows the class).\n# TYPE mtalog_bounce_records_total counter\n";
    const std::string stanza = prometheus_label(instance);
    for (const auto &[index, kind] : kBounceKinds)
        for (std::size_t c = 0; c < kBounceClassCount; ++c) {
            out.append("mtalog_bounce_records_total{stanza=\"").append(stanza).append("\",kind=\"").append(kind);
            out.append("\",class=\"").append(std::to_string(kBounceClasses[c].number));
            out.append("\",name=\"").append(kBounceClasses[c].name).append("\"} ");
            out.append(std::to_string(counts.by_kind[index][c].load(std::memory_order_relaxed))).append("\n");
        }
    out += "# HELP mtalog_bounce_search_failures_total Reply texts the bounce rules' automaton could not search "
           "(out of its memory budget), classified without their text rules.\n"
           "# TYPE mtalog_bounce_search_failures_total counter\n";
    out.append("mtalog_bounce_search_failures_total{stanza=\"").append(stanza).append("\"} ");
    out.append(std::to_string(failed_searches)).append("\n");
    return out;
}

std::string render_bounce_stats(const BounceCounts &counts, std::uint64_t failed_searches)
{
    std::string out;
    for (const auto &[index, kind] : kBounceKinds) {
        std::string line;
        for (std::size_t c = 0; c < kBounceClassCount; ++c)
            if (const auto n = counts.by_kind[index][c].load(std::memory_order_relaxed); n != 0)
                line += " " + std::to_string(kBounceClasses[c].number) + "=" + std::to_string(n);
        if (!line.empty())
            out += "bounces kind=" + std::string(kind) + line + "\n";
    }
    if (failed_searches != 0)
        out += "bounce_search_failures=" + std::to_string(failed_searches) + "\n";
    return out;
}

std::optional<std::string> replace_file(const std::string &path, std::string_view text, unsigned mode)
{
    const std::string temporary = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return "cannot create \"" + temporary + "\": " + std::strerror(errno);
    (void)::fchmod(fd, mode); // exactly, whatever the umask
    int error = write_all(fd, text.data(), text.size()).error;
    if (::close(fd) != 0 && error == 0)
        error = errno;
    if (error == 0 && ::rename(temporary.c_str(), path.c_str()) != 0)
        error = errno;
    if (error == 0)
        return std::nullopt;
    ::unlink(temporary.c_str());
    return "cannot write \"" + path + "\": " + std::strerror(error);
}

} // namespace mtalog
