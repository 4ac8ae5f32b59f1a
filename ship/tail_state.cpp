#include "tail_state.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cursor.hpp"
#include "json_int.hpp"
#include "spool.hpp"
#include "tail_outputs.hpp"

namespace mtalog::ship {

int lock_state(const std::string &path, std::string &error)
{
    const int fd = ::open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        error = path + ".lock: " + std::strerror(errno);
        return -1;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        error = "\"" + path + "\" is in use by another tail (one per --out-dir or state file)";
        return -1;
    }
    return fd;
}

std::variant<TailState, std::string> TailState::load(const std::string &path)
{
    std::optional<std::string> text;
    if (auto e = read_state_file(path, text))
        return *e;
    if (!text)
        return TailState{};
    try {
        const auto j = nlohmann::json::parse(*text);
        if (json_int<int>(j.at("version")) != 1)
            return path + ": unknown tail state version";
        TailState t;
        for (const auto &[name, length] : j.at("outputs").items()) {
            if (!Outputs::is_name(name)) // joined to --out-dir: never a path out of it
                return path + ": \"" + name + "\" is not an output file name";
            t.outputs[name] = json_int<std::uint64_t>(length);
        }
        if (const auto c = j.find("checked"); c != j.end()) // (absent in a state an older tail wrote)
            t.checked = json_int<std::uint64_t>(*c);
        for (const auto &[node, per_key] : j.at("seen").items())
            for (const auto &[key, v] : per_key.items()) {
                Seen &s = t.seen_[node][file_key_of(key)];
                s.used = json_int<std::int64_t>(v.at("used"));
                for (const auto &r : v.at("ranges"))
                    s.ranges.add(json_int<std::uint64_t>(r.at(0)), json_int<std::uint64_t>(r.at(1)));
            }
        return t;
    } catch (const std::exception &e) {
        return path + ": not a tail state file (" + e.what() + ")";
    }
}

std::optional<std::string> TailState::save(const std::string &path) const
{
    nlohmann::json seen_json = nlohmann::json::object();
    for (const auto &[node, per_key] : seen_)
        for (const auto &[key, s] : per_key) {
            nlohmann::json ranges = nlohmann::json::array();
            for (const auto &[a, b] : s.ranges.ranges())
                ranges.push_back({a, b});
            seen_json[node][key_text(key)] = {{"used", s.used}, {"ranges", ranges}};
        }
    const nlohmann::json j = {{"version", 1}, {"outputs", outputs}, {"checked", checked}, {"seen", seen_json}};
    try {
        return write_atomically(path, j.dump(0, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", true);
    } catch (const std::exception &e) {
        return std::string("cannot encode the tail state: ") + e.what();
    }
}

bool TailState::seen_before(std::string_view node, std::uint64_t key, std::uint64_t offset, std::uint64_t end,
                            std::int64_t now)
{
    auto n = seen_.find(node);
    if (n == seen_.end())
        n = seen_.emplace(std::string(node), std::map<std::uint64_t, Seen>{}).first;
    Seen &s = n->second[key];
    s.used = now;
    return !s.ranges.add(offset, end);
}

bool TailState::seen(std::string_view node, std::uint64_t key, std::uint64_t offset, std::uint64_t end) const
{
    const auto n = seen_.find(node);
    if (n == seen_.end())
        return false;
    const auto k = n->second.find(key);
    return k != n->second.end() && k->second.ranges.covers(offset, end);
}

std::size_t TailState::forget_unused(std::int64_t before)
{
    std::size_t n = 0;
    for (auto node = seen_.begin(); node != seen_.end();) {
        n += std::erase_if(node->second, [&](const auto &entry) { return entry.second.used < before; });
        node = node->second.empty() ? seen_.erase(node) : std::next(node);
    }
    return n;
}

std::size_t TailState::keys() const
{
    std::size_t n = 0;
    for (const auto &[node, per_key] : seen_)
        n += per_key.size();
    return n;
}

} // namespace mtalog::ship
