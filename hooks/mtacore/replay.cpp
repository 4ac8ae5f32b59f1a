#include "replay.hpp"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <istream>
#include <ostream>
#include <poll.h>
#include <set>
#include <unistd.h>

#include <mtahooks/conn_flags.hpp>
#include <nlohmann/json.hpp>

#include "event.hpp"
#include "message_id.hpp"

namespace mtacore {

namespace {

using json = nlohmann::json;

struct BadLine {
    std::string reason;
};

[[noreturn]] void bad(std::string reason) { throw BadLine{std::move(reason)}; }

void only_keys(const json &obj, const std::set<std::string> &allowed, const std::string &where)
{
    for (const auto &item : obj.items())
        if (!allowed.count(item.key()))
            bad("unknown field '" + where + item.key() + "'");
}

const json *field(const json &obj, const char *name)
{
    auto it = obj.find(name);
    return (it == obj.end() || it->is_null()) ? nullptr : &*it;
}

std::string get_string(const json &obj, const char *name, const std::string &where)
{
    const json *v = field(obj, name);
    if (!v)
        return {};
    if (!v->is_string())
        bad(where + name + ": expected a string");
    return v->get<std::string>();
}

std::optional<std::string> get_optional_string(const json &obj, const char *name, const std::string &where)
{
    const json *v = field(obj, name);
    if (!v)
        return std::nullopt;
    if (!v->is_string())
        bad(where + name + ": expected a string or null");
    return v->get<std::string>();
}

long long get_integer(const json &obj, const char *name, const std::string &where, long long fallback)
{
    const json *v = field(obj, name);
    if (!v)
        return fallback;
    if (!v->is_number_integer())
        bad(where + name + ": expected an integer");
    return v->get<long long>();
}

std::optional<timeval> get_time(const json &obj, const char *name, const std::string &where)
{
    const json *v = field(obj, name);
    if (!v)
        return std::nullopt;
    if (!v->is_number())
        bad(where + name + ": expected unix seconds (a number) or null");
    const double t = v->get<double>();
    if (!std::isfinite(t) || t < 0 || t > 1e11)
        bad(where + name + ": time out of range");
    auto sec = static_cast<long long>(std::floor(t));
    auto usec = static_cast<long long>(std::llround((t - static_cast<double>(sec)) * 1e6));
    if (usec >= 1000000) {
        ++sec;
        usec -= 1000000;
    }
    return timeval{static_cast<time_t>(sec), static_cast<suseconds_t>(usec)};
}

message_id get_id(const json &obj, const char *name)
{
    const json *v = field(obj, name);
    if (!v)
        return message_id{};
    if (!v->is_string())
        bad(std::string("msg.") + name + ": expected a message id string");
    const auto id = parse_message_id(v->get<std::string>());
    if (!id)
        bad(std::string("msg.") + name + ": \"" + v->get<std::string>() +
            "\" is not a message id of the form 00/00-25004-31B987F3");
    return *id;
}

void read_dict(const json &obj, const char *name, std::vector<std::pair<std::string, std::string>> &out)
{
    const json *v = field(obj, name);
    if (!v)
        return;
    if (!v->is_object())
        bad(std::string("msg.") + name + ": expected an object");
    for (const auto &item : v->items())
        out.emplace_back(item.key(), item.value().is_string() ? item.value().get<std::string>() : item.value().dump());
}

// "headers": {"Subject": "..."} or [["Subject", "..."], ...] (an array keeps
// repeated names and their order).
void read_headers(const json &obj, MessageData &data)
{
    const json *v = field(obj, "headers");
    if (!v)
        return;
    const char *expected = "msg.headers: expected an object of \"name\": \"value\" or an array of [\"name\", \"value\"]";
    if (v->is_object()) {
        for (const auto &item : v->items()) {
            if (!item.value().is_string())
                bad(expected);
            data.add_header(item.key(), item.value().get_ref<const std::string &>());
        }
        return;
    }
    if (!v->is_array())
        bad(expected);
    for (const auto &pair : *v) {
        if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string())
            bad(expected);
        data.add_header(pair[0].get_ref<const std::string &>(), pair[1].get_ref<const std::string &>());
    }
}

// Returns false when the event carries no message (null or absent).
bool read_message(const json &line, OwnedMessage &m)
{
    const json *obj = field(line, "msg");
    if (!obj)
        return false;
    if (!obj->is_object())
        bad("msg: expected an object or null");
    only_keys(*obj,
              {"id", "batch_id", "conn_id", "mailfrom", "rcptto", "binding_slot", "size", "retries", "stage", "code",
               "creation_time", "remote_ip", "vctx_mess", "vctx_conn", "pathway", "protocol", "headers"},
              "msg.");
    m.msg.id = get_id(*obj, "id");
    m.msg.batch_id = get_id(*obj, "batch_id");
    m.msg.conn_id = get_id(*obj, "conn_id");
    split_address(get_string(*obj, "mailfrom", "msg."), m.mailfrom_local, m.mailfrom_domain);
    split_address(get_string(*obj, "rcptto", "msg."), m.rcptto_local, m.rcptto_domain);
    m.msg.binding_slot = static_cast<int>(get_integer(*obj, "binding_slot", "msg.", 0));
    const long long size = get_integer(*obj, "size", "msg.", 0);
    if (size < 0)
        bad("msg.size: must not be negative");
    m.msg.size = static_cast<uint64_t>(size);
    m.msg.num_retries = static_cast<int>(get_integer(*obj, "retries", "msg.", 0));
    m.msg.stage = static_cast<int>(get_integer(*obj, "stage", "msg.", 0));
    m.code = get_optional_string(*obj, "code", "msg.");
    m.remote_ip = get_optional_string(*obj, "remote_ip", "msg.");
    if (auto t = get_time(*obj, "creation_time", "msg."))
        m.msg.creation_time = *t;
    read_dict(*obj, "vctx_mess", m.vctx_mess);
    read_dict(*obj, "vctx_conn", m.vctx_conn);
    m.data.protocol = get_optional_string(*obj, "protocol", "msg.");
    read_headers(*obj, m.data);
    m.bind();
    return true;
}

int read_err(const json &line)
{
    const json *v = field(line, "err");
    if (!v)
        bad("err: required (a number or a list of CONN_* names)");
    if (v->is_number_integer())
        return v->get<int>();
    if (!v->is_array())
        bad("err: expected a number or a list of CONN_* names");
    int err = 0;
    for (const auto &name : *v) {
        if (!name.is_string())
            bad("err: expected CONN_* names as strings");
        const auto text = name.get<std::string>();
        bool found = false;
        for (const auto &flag : mtahooks::kConnFlags)
            if (flag.name == text) {
                err |= flag.value;
                found = true;
            }
        if (!found)
            bad("err: unknown flag \"" + text + "\"");
    }
    return err;
}

struct Domain {
    std::string name;
    domain_record record{};
    domain_record *get() { return record.domain ? &record : nullptr; }
};

void read_domain(const json &line, Domain &d)
{
    if (auto name = get_optional_string(line, "domain", "")) {
        d.name = *name;
        d.record.domain = d.name.data();
    }
}

void replay_line(Core &core, const json &line, ReplayStats &stats)
{
    if (!line.is_object())
        bad("expected a JSON object");
    const std::string hook = get_string(line, "hook", "");
    Domain domain;
    if (hook == "attempt" || hook == "permanent_failure") {
        only_keys(line, {"hook", "msg", "domain", "now", "note"}, "");
        OwnedMessage m;
        const bool has_msg = read_message(line, m);
        read_domain(line, domain);
        auto now = get_time(line, "now", "");
        auto note = get_optional_string(line, "note", "");
        ec_message *msg = has_msg ? &m.msg : nullptr;
        timeval *now_ptr = now ? &*now : nullptr;
        if (hook == "attempt") {
            core.log_attempt(msg, domain.get(), now_ptr, note ? note->data() : nullptr,
                             note ? static_cast<int>(note->size()) : 0, &m.data);
            ++stats.attempts;
        } else {
            string note_string{};
            if (note) {
                note_string.buffer = note->data();
                note_string.len = static_cast<int>(note->size());
                note_string.allocd = note_string.len;
            }
            core.log_permanent_failure(msg, domain.get(), now_ptr, note ? &note_string : nullptr, &m.data);
            ++stats.permanent_failures;
        }
    } else if (hook == "connection_failure") {
        only_keys(line, {"hook", "addr", "err", "domain", "binding_slot", "now"}, "");
        sockaddr_storage peer{};
        sockaddr *addr = nullptr;
        if (auto text = get_optional_string(line, "addr", "")) {
            if (!parse_peer(*text, peer))
                bad("addr: \"" + *text + "\" is not an address like 192.0.2.1:25 or [2001:db8::1]:25");
            addr = reinterpret_cast<sockaddr *>(&peer);
        }
        const int err = read_err(line);
        read_domain(line, domain);
        const int slot = static_cast<int>(get_integer(line, "binding_slot", "", 0));
        auto now = get_time(line, "now", "");
        core.log_connection_failure(addr, err, domain.get(), slot, now ? &*now : nullptr);
        ++stats.connection_failures;
    } else if (hook == "reopen") {
        only_keys(line, {"hook"}, "");
        core.log_reopen();
        ++stats.reopens;
    } else if (hook.empty()) {
        bad("hook: required (attempt, connection_failure, permanent_failure or reopen)");
    } else {
        bad("hook: unknown hook \"" + hook + "\" (attempt, connection_failure, permanent_failure or reopen)");
    }
}

} // namespace

FdInput::int_type FdInput::underflow()
{
    if (gptr() < egptr())
        return traits_type::to_int_type(*gptr());
    for (;;) {
        if (stop_.load())
            return traits_type::eof();
        pollfd ready{fd_, POLLIN, 0};
        const int r = ::poll(&ready, 1, 50);
        if (r < 0 && errno != EINTR)
            return traits_type::eof();
        if (r <= 0)
            continue;
        const ssize_t n = ::read(fd_, buffer_, sizeof buffer_);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            return traits_type::eof(); // end of input, or an error reading it
        setg(buffer_, buffer_, buffer_ + n);
        return traits_type::to_int_type(*gptr());
    }
}

ReplayStats replay(Core &core, std::istream &in, const std::string &source, const std::atomic<bool> &stop,
                   std::ostream &errors, const ReplayProgress &progress)
{
    ReplayStats stats;
    std::string text;
    const auto start = std::chrono::steady_clock::now();
    auto next_progress = start + std::chrono::seconds(1);
    while (!stop.load() && std::getline(in, text)) {
        if (in.eof() && stop.load())
            break; // the end of input is the stop's, mid-line: not a line
        ++stats.lines;
        if (progress) {
            // A clock read costs little beside parsing a JSON line.
            if (const auto now = std::chrono::steady_clock::now(); now >= next_progress) {
                progress(stats.lines, std::chrono::duration<double>(now - start).count());
                next_progress = now + std::chrono::seconds(1);
            }
        }
        if (text.find_first_not_of(" \t\r") == std::string::npos)
            continue;
        try {
            const json line = json::parse(text);
            replay_line(core, line, stats);
        } catch (const BadLine &b) {
            ++stats.bad_lines;
            errors << source << ":" << stats.lines << ": " << b.reason << "; line skipped\n";
        } catch (const json::exception &e) {
            ++stats.bad_lines;
            errors << source << ":" << stats.lines << ": not valid JSON (" << e.what() << "); line skipped\n";
        }
    }
    return stats;
}

} // namespace mtacore
