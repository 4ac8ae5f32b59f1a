#include "ship_config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials.hpp"
#include "formatter.hpp"
#include "parser.hpp"
#include "suggest.hpp"
#include "values.hpp"

namespace mtalog::ship {

namespace {

using mtacfg::ConfigError;
using mtacfg::Option;

// A subject token: no '.', no wildcard, no space.
bool is_token(std::string_view s)
{
    if (s.empty() || s.size() > 64)
        return false;
    for (const char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
            return false;
    return true;
}

bool is_subject_prefix(std::string_view s)
{
    std::size_t start = 0;
    for (;;) {
        const auto dot = s.find('.', start);
        if (!is_token(s.substr(start, dot - start)))
            return false;
        if (dot == std::string_view::npos)
            return true;
        start = dot + 1;
    }
}

std::vector<std::string> split_list(std::string_view text)
{
    std::vector<std::string> out;
    std::string cur;
    for (const char c : text) {
        if (c == ',' || c == ' ' || c == '\t') {
            if (!cur.empty())
                out.push_back(std::move(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty())
        out.push_back(std::move(cur));
    return out;
}

// Where a URL's user information ("user:password@" or "token@": its
// authority up to the last '@') stands; size 0 when it has none.
struct Userinfo {
    std::size_t at = 0, size = 0;
};

Userinfo userinfo_of(std::string_view url)
{
    const auto scheme = url.find("://");
    const std::size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
    const auto authority = url.substr(start, url.find_first_of("/?#", start) - start);
    const auto last = authority.rfind('@');
    return last == std::string_view::npos ? Userinfo{} : Userinfo{start, last + 1};
}

// The URL as messages may show it: user information hidden.
std::string shown_url(const std::string &url)
{
    const Userinfo u = userinfo_of(url);
    return u.size == 0 ? url : url.substr(0, u.at) + "(hidden)@" + url.substr(u.at + u.size);
}

// A server URL may carry a password, so a value of `servers` is never
// repeated in a message.
bool may_hold_secret(const std::string &option)
{
    return option == "servers";
}

std::string resolve(const std::string &path, const std::string &relative_to_file)
{
    if (path.empty() || path.front() == '/')
        return path;
    const auto dir = std::filesystem::path(relative_to_file).parent_path();
    return dir.empty() ? path : (dir / path).string();
}

std::string default_node()
{
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0)
        return "node";
    std::string name(host);
    name.resize(std::min(name.size(), name.find('.')));
    for (char &c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
            c = '_';
    return name.empty() ? "node" : name;
}

// Returns what was expected when the value is not acceptable.
using Apply = std::function<std::optional<std::string>(Settings &, const std::string &)>;

template <typename T>
Apply count_in(T Settings::*member, std::uint64_t lo, std::uint64_t hi)
{
    return [=](Settings &s, const std::string &v) -> std::optional<std::string> {
        const auto n = mtacfg::parse_count(v);
        if (!n || *n < lo || *n > hi)
            return "a count from " + std::to_string(lo) + " to " + std::to_string(hi);
        s.*member = static_cast<T>(*n);
        return std::nullopt;
    };
}

Apply duration_in(std::chrono::milliseconds Settings::*member, long long lo_ms, long long hi_ms)
{
    return [=](Settings &s, const std::string &v) -> std::optional<std::string> {
        const auto d = mtacfg::parse_duration(v);
        const auto ms = d ? std::chrono::duration_cast<std::chrono::milliseconds>(*d).count() : -1;
        if (!d || ms < lo_ms || ms > hi_ms)
            return "a duration from " + std::to_string(lo_ms) + "ms to " + std::to_string(hi_ms / 1000) + "s, e.g. 5s";
        s.*member = std::chrono::milliseconds(ms);
        return std::nullopt;
    };
}

Apply size_in(std::size_t Settings::*member, std::uint64_t lo, std::uint64_t hi)
{
    return [=](Settings &s, const std::string &v) -> std::optional<std::string> {
        const auto n = mtacfg::parse_size(v);
        if (!n || *n < lo || *n > hi)
            return "a size from " + std::to_string(lo) + " to " + std::to_string(hi >> 20) + "M, e.g. 1M";
        s.*member = static_cast<std::size_t>(*n);
        return std::nullopt;
    };
}

// Text that `valid` accepts (any non-empty text without one).
Apply text(std::string Settings::*member, bool (*valid)(std::string_view) = nullptr,
           const char *expected = "a non-empty value")
{
    return [=](Settings &s, const std::string &v) -> std::optional<std::string> {
        if (v.empty() || (valid && !valid(v)))
            return std::string(expected);
        s.*member = v;
        return std::nullopt;
    };
}

const std::map<std::string, Apply> &option_table()
{
    static const std::map<std::string, Apply> table{
        {"mtalog_config", text(&Settings::mtalog_config)},
        {"servers",
         [](Settings &s, const std::string &v) -> std::optional<std::string> {
             s.servers = split_list(v);
             if (s.servers.empty())
                 return std::string("one or more server URLs, e.g. \"nats://127.0.0.1:4222\"");
             for (const auto &u : s.servers) {
                 if (u.rfind("nats://", 0) != 0 && u.rfind("tls://", 0) != 0)
                     return std::string("server URLs starting nats:// or tls://");
                 if (userinfo_of(u).size != 0)
                     return std::string("server URLs without user:password@ or token@: put the user and password, "
                                        "or the token, in credentials_file (mode 0600)");
             }
             return std::nullopt;
         }},
        {"stream", text(&Settings::stream, is_token, "a stream name of letters, digits, '-' and '_'")},
        {"subject_prefix", text(&Settings::subject_prefix, is_subject_prefix,
                                "subject tokens of letters, digits, '-' and '_' joined by '.', e.g. mtalog")},
        {"node", text(&Settings::node, is_token, "a node name of letters, digits, '-' and '_' (one subject token)")},
        {"state_dir", text(&Settings::state_dir)},
        {"credentials_file", text(&Settings::credentials_file, nullptr, "a file name")},
        {"tls_ca", text(&Settings::tls_ca)},
        {"tls_cert", text(&Settings::tls_cert)},
        {"tls_key", text(&Settings::tls_key)},
        {"max_pending", count_in(&Settings::max_pending, 1, 1000000)},
        {"ack_wait", duration_in(&Settings::ack_wait, 100, 600000)},
        {"status_interval", duration_in(&Settings::status_interval, 100, 86400000)},
        {"lag_warning", count_in(&Settings::lag_warning, 0, UINT64_MAX)},
        {"metrics_file", text(&Settings::metrics_file, nullptr, "a file name")},
        {"rotated_idle", duration_in(&Settings::rotated_idle, 0, 3600000)},
        {"retry_max", duration_in(&Settings::retry_max, 100, 3600000)},
        {"reconcile_interval", duration_in(&Settings::reconcile_interval, 100, 3600000)},
        {"reconcile_window", duration_in(&Settings::reconcile_window, 0, 86400000)},
        // The name before mtalog-ship 2, kept so that old configs load.
        {"confirm_after", duration_in(&Settings::reconcile_interval, 100, 3600000)},
        {"max_line", size_in(&Settings::max_line, 1024, 64 << 20)},
        {"create_stream",
         [](Settings &s, const std::string &v) -> std::optional<std::string> {
             const auto b = mtacfg::parse_bool(v);
             if (!b)
                 return std::string("on or off");
             s.create_stream = *b;
             return std::nullopt;
         }},
        {"replicas", count_in(&Settings::replicas, 1, 5)},
        {"duplicate_window", duration_in(&Settings::duplicate_window, 100, 86400000)},
    };
    return table;
}

std::vector<std::string> option_names()
{
    std::vector<std::string> names;
    for (const auto &[name, apply] : option_table())
        names.push_back(name);
    return names;
}

const char *format_name(mtacfg::FormatKind k)
{
    switch (k) {
    case mtacfg::FormatKind::mainlog:
        return "mainlog";
    case mtacfg::FormatKind::json:
        return "json";
    case mtacfg::FormatKind::csv:
        return "csv";
    case mtacfg::FormatKind::custom:
        return "template";
    }
    return "mainlog";
}

// The files every enabled mtalog stanza of `path` writes.
std::optional<std::string> read_mtalog_files(const std::string &path, const mtacfg::Location &named_at,
                                             std::vector<ShipFile> &files)
{
    if (::access(path.c_str(), R_OK) != 0)
        return ConfigError{named_at, "mtalog_config \"" + path + "\": " + std::strerror(errno)}.render();
    auto parsed = mtacfg::parse_file(path);
    if (auto *e = std::get_if<ConfigError>(&parsed))
        return e->render();
    for (const auto &block : std::get<mtacfg::Document>(parsed).blocks) {
        if (!mtacfg::iequals(block.kind, "mtalog"))
            continue; // the core's own stanzas
        // The shipper only lists and reads the log directories: it must be
        // able to run without write access to them.
        auto validated = mtacfg::validate_mtalog(block.options, block.instance.value_or(""), block.where,
                                                 mtacfg::LogAccess::read);
        if (auto *e = std::get_if<ConfigError>(&validated))
            return e->render();
        const auto &settings = std::get<mtacfg::Settings>(validated);
        if (!settings.enabled)
            continue;
        if (settings.follow_symlinks)
            return ConfigError{block.where, "mtalog-ship does not follow symbolic links: set follow_symlinks = off "
                                            "in this stanza, or name the files' real paths"}
                .render();
        auto made = make_formatters(settings);
        if (auto *e = std::get_if<std::string>(&made))
            return *e;
        const auto &formatters = std::get<std::vector<std::unique_ptr<Formatter>>>(made);
        for (std::size_t i = 0; i < settings.files.size(); ++i) {
            for (const ShipFile &other : files)
                if (mtacfg::normalize_path(other.path) == mtacfg::normalize_path(settings.files[i].path))
                    return ConfigError{settings.files[i].where, "log file \"" + settings.files[i].path +
                                                                    "\" is named again (first at " +
                                                                    other.where.render() + "): one file, one stanza"}
                        .render();
            ShipFile f;
            f.path = settings.files[i].path;
            f.format = format_name(settings.files[i].format.kind);
            f.header = formatters[i]->header();
            f.where = settings.files[i].where;
            int kinds = 0;
            for (auto kind : mtacfg::kAllRecordKinds)
                if (settings.file_of[static_cast<std::size_t>(kind)] == i) {
                    ++kinds;
                    f.only_type = std::string(mtacfg::record_name(kind));
                }
            if (kinds != 1)
                f.only_type.clear();
            files.push_back(std::move(f));
        }
    }
    if (files.empty())
        return ConfigError{named_at, "mtalog_config \"" + path + "\" names no log file of an enabled mtalog stanza"}
            .render();
    return std::nullopt;
}

} // namespace

std::variant<Settings, std::string> load_settings(const std::string &path)
{
    auto parsed = mtacfg::parse_file(path);
    if (auto *e = std::get_if<ConfigError>(&parsed))
        return e->render();
    const auto &doc = std::get<mtacfg::Document>(parsed);
    if (!doc.options.empty())
        return ConfigError{doc.options.front().where,
                           "'" + doc.options.front().name + "' outside the mtalog_ship stanza"}
            .render();
    const mtacfg::Block *stanza = nullptr;
    for (const auto &block : doc.blocks) {
        if (!mtacfg::iequals(block.kind, "mtalog_ship"))
            return ConfigError{block.where, "'" + block.kind +
                                                "' stanza in a shipper config (only mtalog_ship belongs here)" +
                                                mtacfg::did_you_mean(block.kind, {"mtalog_ship"})}
                .render();
        if (stanza)
            return ConfigError{block.where,
                               "a second mtalog_ship stanza (the first is at " + stanza->where.render() + ")"}
                .render();
        stanza = &block;
    }
    if (!stanza)
        return path + ": no mtalog_ship stanza";
    Settings s;
    s.config_path = path;
    std::map<std::string, const Option *> seen;
    const Option *credentials_at = nullptr, *mtalog_config_at = nullptr;
    for (const Option &o : stanza->options) {
        const std::string name = mtacfg::to_lower(o.name);
        const auto it = option_table().find(name);
        if (it == option_table().end())
            return ConfigError{o.where, "unknown option '" + o.name + "' in mtalog_ship" +
                                            mtacfg::did_you_mean(o.name, option_names())}
                .render();
        if (const auto [first, fresh] = seen.emplace(name, &o); !fresh)
            return ConfigError{o.where, "'" + o.name + "' given twice (first at " + first->second->where.render() + ")"}
                .render();
        if (auto expected = it->second(s, o.value))
            return ConfigError{o.value_where, "'" + o.name + "' must be " + *expected +
                                                  (may_hold_secret(name) ? "" : ", not \"" + o.value + "\"")}
                .render();
        if (name == "credentials_file")
            credentials_at = &o;
        if (name == "mtalog_config")
            mtalog_config_at = &o;
    }
    if (!mtalog_config_at)
        return ConfigError{stanza->where, "mtalog_ship needs mtalog_config: the mtalog config that names the files"}
            .render();
    if (s.servers.empty())
        return ConfigError{stanza->where, "mtalog_ship needs servers, e.g. servers = \"nats://127.0.0.1:4222\""}
            .render();
    if (s.tls_cert.empty() != s.tls_key.empty())
        return ConfigError{stanza->where, "tls_cert and tls_key go together"}.render();
    if (s.node.empty()) {
        s.node = default_node();
        s.node_defaulted = true;
    }
    s.mtalog_config = resolve(s.mtalog_config, path);
    if (!s.metrics_file.empty())
        s.metrics_file = resolve(s.metrics_file, path);
    for (std::string *file : {&s.tls_ca, &s.tls_cert, &s.tls_key}) {
        if (file->empty())
            continue;
        *file = resolve(*file, path);
        if (::access(file->c_str(), R_OK) != 0)
            return ConfigError{stanza->where, "TLS file \"" + *file + "\": " + std::strerror(errno)}.render();
    }
    if (credentials_at) {
        s.credentials_file = resolve(s.credentials_file, path);
        s.credentials = Credentials{};
        if (auto error = read_credentials(s.credentials_file, credentials_at->value_where, *s.credentials))
            return *error;
    }
    if (auto error = read_mtalog_files(s.mtalog_config, mtalog_config_at->value_where, s.files))
        return *error;
    return s;
}

std::string describe(const Settings &s)
{
    std::string out = "node " + s.node + ": " + std::to_string(s.files.size()) + " file(s) from " + s.mtalog_config +
                      " to stream " + s.stream + " (subjects " + s.subject_prefix + "." + s.node + ".<type>) on";
    for (const auto &server : s.servers)
        out += " " + shown_url(server);
    return out;
}

} // namespace mtalog::ship
