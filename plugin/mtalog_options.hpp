// The mtalog stanza: one table of options (name, type, default, validator,
// help) and the validated settings it produces. Nothing here opens a file;
// validation only looks at the file system to report a bad path early.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "document.hpp"

namespace mtacfg {

enum class RecordKind : std::size_t { attempt = 0, connection_failure = 1, permanent_failure = 2 };
inline constexpr std::size_t kRecordKinds = 3;
inline constexpr std::array<RecordKind, kRecordKinds> kAllRecordKinds{
    RecordKind::attempt, RecordKind::connection_failure, RecordKind::permanent_failure};

// "attempt", "connection_failure", "permanent_failure"
[[nodiscard]] std::string_view record_name(RecordKind kind) noexcept;

enum class FormatKind { mainlog, json, csv, custom };

// A record format as configured: a named format, or a %-template.
struct FormatSpec {
    FormatKind kind = FormatKind::mainlog;
    std::string template_text; // FormatKind::custom only
    bool operator==(const FormatSpec &) const = default;
};

// "mainlog", "json", "csv" or "template \"...\"".
[[nodiscard]] std::string format_name(const FormatSpec &format);
// A format name (any case), or a template: any value with a '%' in it
// (macros are checked when the module compiles the template).
[[nodiscard]] std::optional<FormatSpec> parse_format(std::string_view v);

enum class TimePrecision { seconds, microseconds };
enum class Overflow { block, drop };
enum class RotateInterval { none, hourly, daily };
enum class Compression { none, gzip, zstd };

struct RecordOptions {
    bool enabled = true;
    std::string logfile;            // empty: use mainlog
    Location logfile_where;
    FormatSpec format;
    Location format_where;          // of the value, for template errors
    std::optional<unsigned> mode;   // empty: log_mode
};

// One output file after routing: every record kind written to it.
struct FileSpec {
    std::string path; // as configured
    FormatSpec format;
    unsigned mode = 0640;
    bool follow_symlinks = false;
    Location where; // the value that first named the file
};

struct Settings {
    std::string instance; // "" for a singleton stanza
    bool enabled = true;
    unsigned debug_level = 0;
    std::array<RecordOptions, kRecordKinds> records{};
    std::string mainlog;
    Location mainlog_where;
    unsigned log_mode = 0640;
    std::size_t queue_size = 8192;
    std::chrono::microseconds flush_interval{100000};
    std::size_t max_note_bytes = 2048;
    TimePrecision timestamp_precision = TimePrecision::seconds;
    Overflow overflow = Overflow::block;
    std::chrono::microseconds overflow_timeout{1000000};
    std::chrono::microseconds reopen_check_interval{5000000}; // zero: off
    std::uint64_t rotate_size = 0;                            // zero: off
    RotateInterval rotate_interval = RotateInterval::none;
    bool rotate_utc = true;
    std::size_t rotate_keep = 7; // zero: keep every rotated file
    Compression compress = Compression::none;
    bool follow_symlinks = false;
    std::string metrics_file; // empty: no metrics file
    Location metrics_file_where;
    std::chrono::microseconds metrics_interval{15000000};
    bool bounce_classes = true;
    std::string bounce_rules; // empty: the built-in rules only
    Location bounce_rules_where;

    // Filled by validation: the files, and which file each record kind goes to.
    std::vector<FileSpec> files;
    std::array<std::optional<std::size_t>, kRecordKinds> file_of{};
};

struct OptionSpec {
    std::string_view name;
    std::string_view type;
    std::string_view default_text;
    std::string_view help;
    // Returns what was expected when `value` is not acceptable.
    std::optional<std::string> (*apply)(Settings &settings, std::string_view value);
};

[[nodiscard]] const std::vector<OptionSpec> &mtalog_option_table();

// What the validating process will do with the log files: the module
// writes them; a reader (mtalog-ship) only lists and reads them, and must
// not need more than that.
enum class LogAccess { write, read };

// Validates a stanza's options (names case-insensitive, each at most once),
// then routing: at least one record kind logged (unless enabled = off), one
// format and one mode per file, and each file's directory exists and is
// writable (with LogAccess::read: readable and searchable; metrics_file,
// which a reader never touches, is then not looked at on disk).
[[nodiscard]] std::variant<Settings, ConfigError> validate_mtalog(const std::vector<Option> &options,
                                                                  const std::string &instance,
                                                                  const Location &stanza_where,
                                                                  LogAccess access = LogAccess::write);

// `mtalog` or `mtalog "instance"`, as messages name a stanza.
[[nodiscard]] std::string stanza_label(const std::string &instance);

// The key under which two spellings of one path compare equal.
[[nodiscard]] std::string normalize_path(const std::string &path);

// The option table as the Markdown table docs/configuration.md carries.
[[nodiscard]] std::string render_options_markdown();

} // namespace mtacfg
