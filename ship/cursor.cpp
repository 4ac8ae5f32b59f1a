#include "cursor.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "escape.hpp"
#include "spool.hpp"

namespace mtalog::ship {

namespace {

bool is_utf8(std::string_view text)
{
    for (std::size_t i = 0, n = 0; i < text.size(); i += n)
        if ((n = utf8_sequence_length(text.substr(i))) == 0)
            return false;
    return true;
}

std::string to_hex(std::string_view bytes)
{
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        out += digits[b >> 4];
        out += digits[b & 0xf];
    }
    return out;
}

std::optional<std::string> from_hex(std::string_view hex)
{
    const auto value = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        return -1;
    };
    if (hex.size() % 2 != 0)
        return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = value(hex[i]), lo = value(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return std::nullopt;
        out += static_cast<char>(hi << 4 | lo);
    }
    return out;
}

nlohmann::json file_entry(const KeyState &k)
{
    nlohmann::json stored = nlohmann::json::array();
    for (const auto &[start, end] : k.stored)
        stored.push_back({start, end});
    nlohmann::json entry = {{"path", k.path}, {"offset", k.offset}, {"done", k.done}, {"stored", stored}};
    // JSON text is UTF-8 but a path is bytes: one that is not UTF-8 is kept
    // exactly, as hex, in path_bytes (its `path`, for people, shows U+FFFD
    // for the bytes that are not UTF-8).
    if (!is_utf8(k.path))
        entry["path_bytes"] = to_hex(k.path);
    return entry;
}

std::optional<std::string> path_from(const nlohmann::json &v)
{
    if (!v.contains("path_bytes"))
        return v.at("path").get<std::string>();
    return from_hex(v.at("path_bytes").get<std::string>());
}

} // namespace

void KeyState::add_stored(std::uint64_t start, std::uint64_t end)
{
    if (end <= offset || start >= end)
        return;
    auto it = stored.upper_bound(start);
    if (it != stored.begin() && std::prev(it)->second >= start) {
        --it;
        start = it->first;
        end = std::max(end, it->second);
        it = stored.erase(it);
    }
    while (it != stored.end() && it->first <= end) {
        end = std::max(end, it->second);
        it = stored.erase(it);
    }
    stored.emplace(start, end);
}

void KeyState::remove_stored(std::uint64_t start, std::uint64_t end)
{
    auto it = stored.upper_bound(start);
    if (it == stored.begin())
        return;
    --it;
    const auto [from, to] = *it;
    if (to <= start)
        return;
    stored.erase(it);
    if (from < start)
        stored.emplace(from, start);
    if (end < to)
        stored.emplace(end, to);
}

std::optional<std::uint64_t> KeyState::stored_at(std::uint64_t start) const
{
    auto it = stored.upper_bound(start);
    if (it == stored.begin())
        return std::nullopt;
    --it;
    if (it->first <= start && start < it->second)
        return it->second;
    return std::nullopt;
}

void KeyState::trim()
{
    while (!stored.empty() && stored.begin()->second <= offset)
        stored.erase(stored.begin());
}

std::variant<Cursor, std::string> load_cursor(const std::string &path)
{
    std::ifstream in(path);
    if (!in) {
        if (errno == ENOENT)
            return Cursor{};
        return path + ": " + std::strerror(errno);
    }
    std::stringstream text;
    text << in.rdbuf();
    try {
        const auto j = nlohmann::json::parse(text.str());
        if (j.at("version").get<int>() != 1)
            return path + ": unknown cursor version";
        Cursor c;
        c.node = j.at("node").get<std::string>();
        c.scan_from = j.at("scan_from").get<std::uint64_t>();
        for (const auto &[key, v] : j.at("files").items()) {
            if (key.size() != 16)
                return path + ": bad file key \"" + key + "\"";
            KeyState k;
            auto file_path = path_from(v);
            if (!file_path)
                return path + ": bad path_bytes of file key \"" + key + "\"";
            k.path = std::move(*file_path);
            k.offset = v.at("offset").get<std::uint64_t>();
            k.done = v.at("done").get<bool>();
            for (const auto &range : v.at("stored"))
                k.add_stored(range.at(0).get<std::uint64_t>(), range.at(1).get<std::uint64_t>());
            c.keys.emplace(std::stoull(key, nullptr, 16), std::move(k));
        }
        return c;
    } catch (const std::exception &e) {
        return path + ": not a cursor file (" + e.what() + ")";
    }
}

std::optional<std::string> write_atomically(const std::string &path, const std::string &text, bool durable,
                                            unsigned mode)
{
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return tmp + ": " + std::strerror(errno);
    (void)::fchmod(fd, mode); // exactly, whatever the umask
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            return tmp + ": " + std::strerror(e);
        }
        done += static_cast<std::size_t>(n);
    }
    if (durable && ::fsync(fd) != 0) {
        const int e = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return tmp + ": fsync: " + std::strerror(e);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        return path + ": rename: " + std::strerror(e);
    }
    if (durable) {
        const auto dir = std::filesystem::path(path).parent_path();
        const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }
    return std::nullopt;
}

std::optional<std::string> save_cursor(const Cursor &cursor, const std::string &path)
{
    nlohmann::json files = nlohmann::json::object();
    for (const auto &[key, k] : cursor.keys)
        files[key_text(key)] = file_entry(k);
    const nlohmann::json j = {{"version", 1}, {"node", cursor.node}, {"scan_from", cursor.scan_from}, {"files", files}};
    // replace, not dump's default (which throws on bytes that are not UTF-8):
    // file_entry kept such a path's bytes.
    return write_atomically(path, j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", true);
}

} // namespace mtalog::ship
