#include "mtalog_options.hpp"

#include <cstdio>
#include <filesystem>

#include "values.hpp"

namespace mtacfg {

namespace fs = std::filesystem;

std::string_view record_name(RecordKind kind) noexcept
{
    switch (kind) {
    case RecordKind::attempt: return "attempt";
    case RecordKind::connection_failure: return "connection_failure";
    case RecordKind::permanent_failure: return "permanent_failure";
    }
    return "?";
}

std::string format_name(const FormatSpec &format)
{
    switch (format.kind) {
    case FormatKind::mainlog: return "mainlog";
    case FormatKind::json: return "json";
    case FormatKind::csv: return "csv";
    case FormatKind::custom: return "template \"" + format.template_text + "\"";
    }
    return "?";
}

namespace {

using Apply = std::optional<std::string> (*)(Settings &, std::string_view);
using Expected = std::optional<std::string>;

RecordOptions &rec(Settings &s, RecordKind k) { return s.records[static_cast<std::size_t>(k)]; }

// Stores a parsed value, or says what was expected when parsing failed.
template <typename T, typename Store>
Expected assign(std::optional<T> parsed, std::string_view expected, Store store)
{
    if (!parsed)
        return std::string(expected);
    store(std::move(*parsed));
    return std::nullopt;
}

std::optional<std::string> parse_path(std::string_view v)
{
    return v.empty() ? std::nullopt : std::optional<std::string>(v);
}

std::optional<TimePrecision> parse_precision(std::string_view v)
{
    if (iequals(v, "seconds"))
        return TimePrecision::seconds;
    if (iequals(v, "microseconds"))
        return TimePrecision::microseconds;
    return std::nullopt;
}

constexpr std::string_view kPath = "a file path";
constexpr std::string_view kMode = "an octal file mode that others cannot write, such as 0640";

// A log mode: octal, and never writable by every user.
std::optional<unsigned> parse_log_mode(std::string_view v)
{
    auto m = parse_mode(v);
    if (m && (*m & 0002) != 0)
        m.reset();
    return m;
}
constexpr std::string_view kOnOff = "on or off";

template <RecordKind K>
Expected set_logfile(Settings &s, std::string_view v)
{
    return assign(parse_path(v), kPath, [&](std::string p) { rec(s, K).logfile = std::move(p); });
}

template <RecordKind K>
Expected set_format(Settings &s, std::string_view v)
{
    return assign(parse_format(v), "mainlog, json, csv or a %-template such as \"%t %i %n\"",
                  [&](FormatSpec f) { rec(s, K).format = std::move(f); });
}

template <RecordKind K>
Expected set_mode(Settings &s, std::string_view v)
{
    return assign(parse_log_mode(v), kMode, [&](unsigned m) { rec(s, K).mode = m; });
}

template <RecordKind K>
Expected set_toggle(Settings &s, std::string_view v)
{
    return assign(parse_bool(v), kOnOff, [&](bool b) { rec(s, K).enabled = b; });
}

// A count or size option with an inclusive range.
template <auto Member, std::uint64_t Min, std::uint64_t Max, bool Size>
Expected set_bounded(Settings &s, std::string_view v)
{
    auto n = Size ? parse_size(v) : parse_count(v);
    if (n && (*n < Min || *n > Max))
        n.reset();
    const std::string expected = std::string(Size ? "a size" : "a whole number") + " from " + std::to_string(Min) +
                                 " to " + std::to_string(Max);
    return assign(n, expected,
                  [&](std::uint64_t value) { s.*Member = static_cast<std::remove_reference_t<decltype(s.*Member)>>(value); });
}

// A duration option with an inclusive range; `zero_ok` also allows 0 (off).
template <auto Member, long long MinMs, long long MaxMs, bool ZeroOk>
Expected set_duration(Settings &s, std::string_view v)
{
    auto d = parse_duration(v);
    if (!d && ZeroOk && v == "0")
        d = std::chrono::microseconds(0);
    if (d && !(ZeroOk && d->count() == 0) &&
        (*d < std::chrono::milliseconds(MinMs) || *d > std::chrono::milliseconds(MaxMs)))
        d.reset();
    const std::string expected = std::string(ZeroOk ? "0 (off) or " : "") + "a duration from " +
                                 std::to_string(MinMs) + "ms to " + std::to_string(MaxMs / 1000) +
                                 "s, such as 100ms or 5s";
    return assign(d, expected, [&](std::chrono::microseconds x) { s.*Member = x; });
}

// An option whose value is one of a few words.
template <auto Member, typename Enum, std::size_t N>
Expected set_word(Settings &s, std::string_view v, const std::array<std::pair<std::string_view, Enum>, N> &words)
{
    std::string expected;
    for (const auto &[word, value] : words) {
        if (iequals(v, word)) {
            s.*Member = value;
            return std::nullopt;
        }
        expected += (expected.empty() ? "" : ", ") + std::string(word);
    }
    return "one of " + expected;
}

Expected set_overflow(Settings &s, std::string_view v)
{
    static constexpr std::array words{std::pair<std::string_view, Overflow>{"block", Overflow::block},
                                      std::pair<std::string_view, Overflow>{"drop", Overflow::drop}};
    return set_word<&Settings::overflow>(s, v, words);
}

Expected set_rotate_interval(Settings &s, std::string_view v)
{
    static constexpr std::array words{
        std::pair<std::string_view, RotateInterval>{"none", RotateInterval::none},
        std::pair<std::string_view, RotateInterval>{"hourly", RotateInterval::hourly},
        std::pair<std::string_view, RotateInterval>{"daily", RotateInterval::daily}};
    return set_word<&Settings::rotate_interval>(s, v, words);
}

Expected set_rotate_clock(Settings &s, std::string_view v)
{
    static constexpr std::array words{std::pair<std::string_view, bool>{"utc", true},
                                      std::pair<std::string_view, bool>{"local", false}};
    return set_word<&Settings::rotate_utc>(s, v, words);
}

Expected set_compress(Settings &s, std::string_view v)
{
    static constexpr std::array words{std::pair<std::string_view, Compression>{"none", Compression::none},
                                      std::pair<std::string_view, Compression>{"gzip", Compression::gzip},
                                      std::pair<std::string_view, Compression>{"zstd", Compression::zstd}};
    return set_word<&Settings::compress>(s, v, words);
}

Expected set_mainlog(Settings &s, std::string_view v)
{
    return assign(parse_path(v), kPath, [&](std::string p) { s.mainlog = std::move(p); });
}

Expected set_metrics_file(Settings &s, std::string_view v)
{
    return assign(parse_path(v), kPath, [&](std::string p) { s.metrics_file = std::move(p); });
}

Expected set_bounce_rules(Settings &s, std::string_view v)
{
    return assign(parse_path(v), kPath, [&](std::string p) { s.bounce_rules = std::move(p); });
}

Expected set_log_mode(Settings &s, std::string_view v)
{
    return assign(parse_log_mode(v), kMode, [&](unsigned m) { s.log_mode = m; });
}

Expected set_follow_symlinks(Settings &s, std::string_view v)
{
    return assign(parse_bool(v), kOnOff, [&](bool b) { s.follow_symlinks = b; });
}

Expected set_bounce_classes(Settings &s, std::string_view v)
{
    return assign(parse_bool(v), kOnOff, [&](bool b) { s.bounce_classes = b; });
}

Expected set_enabled(Settings &s, std::string_view v)
{
    return assign(parse_bool(v), kOnOff, [&](bool b) { s.enabled = b; });
}

Expected set_timestamp_precision(Settings &s, std::string_view v)
{
    return assign(parse_precision(v), "seconds or microseconds", [&](TimePrecision p) { s.timestamp_precision = p; });
}

std::vector<OptionSpec> build_table()
{
    using R = RecordKind;
    return {
        {"attempt_logfile", "path", "(none)", "File for attempt records (`core_log_attempt_v1`); unset: `mainlog`.",
         set_logfile<R::attempt>},
        {"attempt_format", "format", "mainlog", "Format of attempt records: `mainlog`, `json`, `csv` or a %-template (docs/formats.md).", set_format<R::attempt>},
        {"attempt_log_mode", "mode", "log_mode", "Octal mode of a newly created attempt log file.",
         set_mode<R::attempt>},
        {"log_attempts", "on\\|off", "on", "Write attempt records.", set_toggle<R::attempt>},
        {"connection_failure_logfile", "path", "(none)",
         "File for connection-failure records (`core_log_client_connection_failure`); unset: `mainlog`.",
         set_logfile<R::connection_failure>},
        {"connection_failure_format", "format", "mainlog", "Format of connection-failure records: `mainlog`, `json`, `csv` or a %-template.",
         set_format<R::connection_failure>},
        {"connection_failure_log_mode", "mode", "log_mode",
         "Octal mode of a newly created connection-failure log file.", set_mode<R::connection_failure>},
        {"log_connection_failures", "on\\|off", "on", "Write connection-failure records.",
         set_toggle<R::connection_failure>},
        {"permanent_failure_logfile", "path", "(none)",
         "File for permanent-failure records (`core_log_permanent_failure_v1`); unset: `mainlog`.",
         set_logfile<R::permanent_failure>},
        {"permanent_failure_format", "format", "mainlog", "Format of permanent-failure records: `mainlog`, `json`, `csv` or a %-template.",
         set_format<R::permanent_failure>},
        {"permanent_failure_log_mode", "mode", "log_mode",
         "Octal mode of a newly created permanent-failure log file.", set_mode<R::permanent_failure>},
        {"log_permanent_failures", "on\\|off", "on", "Write permanent-failure records.",
         set_toggle<R::permanent_failure>},
        {"mainlog", "path", "(none)", "One file for every record kind that has no `<record>_logfile` of its own.",
         set_mainlog},
        {"log_mode", "mode", "0640", "Octal mode of newly created log files (applied exactly, whatever the umask).",
         set_log_mode},
        {"timestamp_precision", "seconds\\|microseconds", "seconds",
         "Record time as unix seconds (`1700000000`) or with microseconds (`1700000000.123456`).",
         set_timestamp_precision},
        {"max_note_bytes", "size", "2048",
         "Cap on the escaped note/DSN text of a record; longer text ends in `...[truncated]`.",
         set_bounded<&Settings::max_note_bytes, 64, 1u << 20, true>},
        {"queue_size", "integer", "8192",
         "Records that may wait in the asynchronous queue before the overflow policy applies (a batch counts "
         "its records, or one per 256 bytes when that is more); threads hand records over in batches of up to "
         "1,024.",
         set_bounded<&Settings::queue_size, 64, 1u << 24, false>},
        {"flush_interval", "duration", "100ms",
         "How often staged and buffered records are pushed to the file: a record reaches it within two intervals.",
         set_duration<&Settings::flush_interval, 1, 60000, false>},
        {"overflow", "block\\|drop", "block",
         "When the queue is full (a slow or full disk): `block` makes the hook wait up to `overflow_timeout`, "
         "then drop; `drop` never waits. Every dropped record is counted.",
         set_overflow},
        {"overflow_timeout", "duration", "1s",
         "Longest a hook call waits for queue space with `overflow = block`; also the longest a `log_reopen` "
         "waits, and what unloading waits for a failing disk.",
         set_duration<&Settings::overflow_timeout, 1, 60000, false>},
        {"reopen_check_interval", "duration", "5s",
         "How often the writer checks that each path still names its open file, reopening it if it was moved "
         "or deleted without a `log_reopen`; `0` turns the check off.",
         set_duration<&Settings::reopen_check_interval, 10, 3600000, true>},
        {"rotate_size", "size", "0", "Rotate a file when it reaches this size; `0`: never by size.",
         set_bounded<&Settings::rotate_size, 0, (1ull << 40), true>},
        {"rotate_interval", "none\\|hourly\\|daily", "none", "Rotate at the start of every hour or day.",
         set_rotate_interval},
        {"rotate_clock", "utc\\|local", "utc", "Clock that `rotate_interval` and rotated file names follow.",
         set_rotate_clock},
        {"rotate_keep", "integer", "7",
         "Rotated files kept per log file (oldest deleted first); `0` keeps all. Only files named by mtalog's "
         "scheme are ever deleted.",
         set_bounded<&Settings::rotate_keep, 0, 100000, false>},
        {"compress", "none\\|gzip\\|zstd", "none",
         "Compress rotated files on a background thread (into a temporary name, then renamed).", set_compress},
        {"follow_symlinks", "on\\|off", "off",
         "Write through a log path that is a symbolic link. Off: such a path is refused (O_NOFOLLOW), at load "
         "time and at every reopen.",
         set_follow_symlinks},
        {"enabled", "on\\|off", "on", "`off` loads the instance passively: it validates, opens nothing, writes nothing.",
         set_enabled},
        {"metrics_file", "path", "(none)",
         "Write the instance's counters here in Prometheus's text format, for node_exporter's textfile "
         "collector (name it `*.prom` in the collector's directory); replaced whole (temporary name, then "
         "rename) every `metrics_interval`, by the flusher thread, never by a hook call.",
         set_metrics_file},
        {"metrics_interval", "duration", "15s", "How often `metrics_file` is written (also once at start and at unload).",
         set_duration<&Settings::metrics_interval, 1000, 3600000, false>},
        {"bounce_classes", "on\\|off", "on",
         "Give attempts and permanent failures their bounce class (JSON, CSV, `%C`, `%c`). `off`: no rules are "
         "compiled, records carry the parsed reply only, and a template with `%C` or `%c` is refused; it saves "
         "the classification's cost on every JSON and CSV record (docs/performance.md).",
         set_bounce_classes},
        {"bounce_rules", "path", "(none)",
         "A file of bounce rules in Momentum's config syntax (docs/formats.md), tried before the built-in ones "
         "(`config/bounce_rules.conf`): they give the bounce class that `%C`, `%c`, JSON and CSV show. Read and "
         "compiled once, at load; an error in it refuses the config.",
         set_bounce_rules},
        {"debug_level", "integer", "0", "Diagnostics in the core's paniclog: 0 errors and shutdown counters; 1 also each file opened and reopened (0-9).",
         set_bounded<&Settings::debug_level, 0, 9, false>},
    };
}

} // namespace

std::optional<FormatSpec> parse_format(std::string_view v)
{
    for (auto [name, kind] : {std::pair{"mainlog", FormatKind::mainlog}, std::pair{"json", FormatKind::json},
                              std::pair{"csv", FormatKind::csv}})
        if (iequals(v, name))
            return FormatSpec{kind, {}};
    if (v.find('%') != std::string_view::npos)
        return FormatSpec{FormatKind::custom, std::string(v)};
    return std::nullopt;
}

std::string stanza_label(const std::string &instance)
{
    return instance.empty() ? std::string("mtalog") : "mtalog \"" + instance + "\"";
}

std::string normalize_path(const std::string &path)
{
    std::error_code ec;
    auto abs = fs::absolute(path, ec);
    return (ec ? fs::path(path) : abs).lexically_normal().string();
}

const std::vector<OptionSpec> &mtalog_option_table()
{
    static const std::vector<OptionSpec> table = build_table();
    return table;
}

std::string render_options_markdown()
{
    std::string out = "| option | type | default | meaning |\n| --- | --- | --- | --- |\n";
    for (const auto &spec : mtalog_option_table()) {
        out += "| `" + std::string(spec.name) + "` | " + std::string(spec.type) + " | `" +
               std::string(spec.default_text) + "` | " + std::string(spec.help) + " |\n";
    }
    return out;
}

} // namespace mtacfg
