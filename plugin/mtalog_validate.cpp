// The mtalog stanza checked as a whole, after each option's own check (the
// table, mtalog_options.cpp): unknown and repeated options, which file each
// record kind goes to and whether kinds sharing a file agree, whether the
// files' directories can be used, and the metrics file.
#include "mtalog_options.hpp"

#include <cstdio>
#include <filesystem>
#include <map>
#include <unistd.h>

#include "suggest.hpp"
#include "values.hpp"

namespace mtacfg {

namespace fs = std::filesystem;

namespace {

std::string fmt_octal(unsigned mode)
{
    char buf[8];
    std::snprintf(buf, sizeof buf, "%o", mode);
    return buf;
}

std::vector<std::string> option_names()
{
    std::vector<std::string> names;
    for (const auto &spec : mtalog_option_table())
        names.emplace_back(spec.name);
    return names;
}


// An error for a file path, or nullopt when the file can be opened later.
std::optional<std::string> check_path(const std::string &path, bool follow_symlinks, LogAccess access)
{
    std::error_code ec;
    const fs::path p(path);
    if (!follow_symlinks && fs::is_symlink(fs::symlink_status(p, ec)))
        return "is a symbolic link; refused (set follow_symlinks = on to write through it)";
    if (fs::is_directory(p, ec))
        return "is a directory";
    fs::path dir = p.parent_path();
    if (dir.empty())
        dir = ".";
    if (!fs::exists(dir, ec))
        return "directory \"" + dir.string() + "\" does not exist";
    if (!fs::is_directory(dir, ec))
        return "\"" + dir.string() + "\" is not a directory";
    if (access == LogAccess::read && ::access(dir.c_str(), R_OK | X_OK) != 0)
        return "directory \"" + dir.string() + "\" is not readable";
    if (access == LogAccess::write && ::access(dir.c_str(), W_OK | X_OK) != 0)
        return "directory \"" + dir.string() + "\" is not writable";
    return std::nullopt;
}

// A file some record kind writes: which FileSpec, the first kind routed to
// it, and whether that kind set its mode explicitly. (cppcheck 2.10 does not
// see the uses through route()'s map iterator, hence the suppressions.)
struct Claim {
    // cppcheck-suppress unusedStructMember
    std::size_t file;
    // cppcheck-suppress unusedStructMember
    RecordKind first_kind;
    // cppcheck-suppress unusedStructMember
    bool explicit_mode;
};

std::optional<ConfigError> route(Settings &s, const Location &stanza_where, LogAccess access)
{
    std::map<std::string, Claim> claims;
    for (RecordKind kind : kAllRecordKinds) {
        const RecordOptions &r = s.records[static_cast<std::size_t>(kind)];
        if (!r.enabled)
            continue;
        const bool own = !r.logfile.empty();
        const std::string &path = own ? r.logfile : s.mainlog;
        if (path.empty())
            continue;
        const Location &where = own ? r.logfile_where : s.mainlog_where;
        const unsigned mode = r.mode.value_or(s.log_mode);
        const std::string key = normalize_path(path);
        auto it = claims.find(key);
        if (it == claims.end()) {
            if (auto problem = check_path(path, s.follow_symlinks, access))
                return ConfigError{where, "log file \"" + path + "\": " + *problem};
            s.files.push_back(FileSpec{path, r.format, mode, s.follow_symlinks, where});
            it = claims.emplace(key, Claim{s.files.size() - 1, kind, r.mode.has_value()}).first;
        } else {
            const FileSpec &file = s.files[it->second.file];
            if (file.format != r.format)
                return ConfigError{where, "log file \"" + path + "\" gets " + std::string(record_name(kind)) +
                                              " records in format " + format_name(r.format) + " but " +
                                              std::string(record_name(it->second.first_kind)) +
                                              " records in format " + format_name(file.format) +
                                              "; records sharing a file must share a format"};
            if (file.mode != mode && (r.mode.has_value() || it->second.explicit_mode))
                return ConfigError{where, "log file \"" + path + "\" is given mode 0" + fmt_octal(mode) +
                                              " for " + std::string(record_name(kind)) + " records but 0" +
                                              fmt_octal(file.mode) + " for " +
                                              std::string(record_name(it->second.first_kind)) + " records"};
        }
        s.file_of[static_cast<std::size_t>(kind)] = it->second.file;
    }
    if (s.files.empty() && s.enabled)
        return ConfigError{stanza_where, stanza_label(s.instance) +
                                             " logs nothing: set mainlog or attempt_logfile, "
                                             "connection_failure_logfile, permanent_failure_logfile"};
    return std::nullopt;
}

} // namespace

std::variant<Settings, ConfigError> validate_mtalog(const std::vector<Option> &options, const std::string &instance,
                                                    const Location &stanza_where, LogAccess access)
{
    Settings s;
    s.instance = instance;
    const auto &table = mtalog_option_table();
    std::map<std::string, Location> seen;
    for (const Option &opt : options) {
        const std::string key = to_lower(opt.name);
        const OptionSpec *spec = nullptr;
        for (const auto &candidate : table)
            if (candidate.name == key)
                spec = &candidate;
        if (spec == nullptr)
            return ConfigError{opt.where, "unknown option '" + opt.name + "' in " + stanza_label(instance) +
                                              did_you_mean(opt.name, option_names())};
        if (auto previous = seen.find(key); previous != seen.end())
            return ConfigError{opt.where, "option '" + opt.name + "' is set twice (first at line " +
                                              std::to_string(previous->second.line) + ")"};
        seen.emplace(key, opt.where);
        if (auto expected = spec->apply(s, opt.value))
            return ConfigError{opt.value_where, "invalid value \"" + opt.value + "\" for '" + std::string(spec->name) +
                                                    "': expected " + *expected};
        if (key == "mainlog")
            s.mainlog_where = opt.value_where;
        if (key == "metrics_file")
            s.metrics_file_where = opt.value_where;
        if (key == "bounce_rules")
            s.bounce_rules_where = opt.value_where;
        for (RecordKind kind : kAllRecordKinds) {
            if (key == std::string(record_name(kind)) + "_logfile")
                s.records[static_cast<std::size_t>(kind)].logfile_where = opt.value_where;
            if (key == std::string(record_name(kind)) + "_format")
                s.records[static_cast<std::size_t>(kind)].format_where = opt.value_where;
        }
    }
    if (!s.enabled)
        return s;
    if (!s.bounce_classes && !s.bounce_rules.empty())
        return ConfigError{s.bounce_rules_where, "bounce_rules is set, but bounce_classes = off uses no rules "
                                                 "(remove one of the two)"};
    if (auto error = route(s, stanza_where, access))
        return *error;
    if (!s.metrics_file.empty()) {
        // Replaced by rename, so a symbolic link there is replaced, never
        // followed. A reader never opens it: only the writer's access counts.
        if (access == LogAccess::write)
            if (auto problem = check_path(s.metrics_file, true, access))
                return ConfigError{s.metrics_file_where, "metrics_file \"" + s.metrics_file + "\": " + *problem};
        for (const FileSpec &file : s.files)
            if (normalize_path(file.path) == normalize_path(s.metrics_file))
                return ConfigError{s.metrics_file_where,
                                   "metrics_file \"" + s.metrics_file + "\" is also a log file of this instance"};
    }
    return s;
}

} // namespace mtacfg
