#include "cursor.hpp"
#include "json_int.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.hpp"

namespace mtalog::ship {

std::uint64_t file_key_of(const std::string &hex)
{
    if (hex.size() != 16 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
        throw std::runtime_error("bad file key \"" + hex + "\"");
    return std::stoull(hex, nullptr, 16);
}

namespace {

using nlohmann::json;

// [start, end) with start < end, as state files hold ranges.
std::pair<std::uint64_t, std::uint64_t> range_of(const json &r)
{
    const auto start = json_int<std::uint64_t>(r.at(0)), end = json_int<std::uint64_t>(r.at(1));
    if (start >= end)
        throw std::runtime_error("an empty or reversed range [" + std::to_string(start) + ", " + std::to_string(end) +
                                 ")");
    return {start, end};
}

Cursor from_v1(const json &j)
{
    Cursor c;
    c.node = j.at("node").get<std::string>();
    c.scan_from = json_int<std::uint64_t>(j.at("scan_from"));
    for (const auto &[key, v] : j.at("files").items()) {
        LegacyEntry e;
        e.path = v.at("path").get<std::string>();
        e.offset = json_int<std::uint64_t>(v.at("offset"));
        e.done = v.at("done").get<bool>();
        c.legacy.emplace(file_key_of(key), std::move(e));
    }
    return c;
}

Cursor from_v2(const json &j)
{
    Cursor c;
    c.node = j.at("node").get<std::string>();
    c.scan_from = json_int<std::uint64_t>(j.at("scan_from"));
    for (const auto &[key, v] : j.at("files").items()) {
        FileEntry e;
        e.path = v.at("path").get<std::string>();
        e.canonical = file_key_of(v.at("canonical").get<std::string>());
        e.generation = json_int<unsigned>(v.at("generation"));
        e.final_offset = json_int<std::uint64_t>(v.at("final"));
        if (const auto &done = v.at("done"); !done.is_null()) {
            e.done_end = json_int<std::uint64_t>(done.at(0));
            e.done_size = json_int<std::uint64_t>(done.at(1));
            if (e.done_end > e.done_size)
                throw std::runtime_error("a finished file's records end past its size");
        }
        e.fp_len = json_int<std::uint64_t>(v.at("fp").at(0));
        e.fp_hash = file_key_of(v.at("fp").at(1).get<std::string>());
        for (const auto &id : v.at("ids"))
            e.ids.push_back(FileId{json_int<dev_t>(id.at(0)), json_int<ino_t>(id.at(1)), json_int<std::int64_t>(id.at(2))});
        e.missed = v.contains("missed") ? json_int<unsigned>(v.at("missed")) : 0u;
        for (const auto &range : v.value("skipped", json::array()))
            e.skipped.insert(range_of(range));
        c.files.emplace(file_key_of(key), std::move(e));
    }
    const json legacy = j.value("legacy", json::object()); // a named value: items() refers into it
    for (const auto &[key, v] : legacy.items())
        c.legacy.emplace(file_key_of(key),
                         LegacyEntry{v.at("path").get<std::string>(), json_int<std::uint64_t>(v.at("offset")),
                                     v.at("done").get<bool>()});
    return c;
}

} // namespace

std::vector<std::uint64_t> age_entries(std::map<std::uint64_t, FileEntry> &files,
                                       const std::set<std::uint64_t> &present, unsigned misses,
                                       const std::function<bool(std::uint64_t)> &keep)
{
    std::vector<std::uint64_t> forgotten;
    for (auto it = files.begin(); it != files.end();) {
        if (present.count(it->first)) {
            it->second.missed = 0;
            ++it;
        } else if (++it->second.missed >= misses && !keep(it->first)) {
            forgotten.push_back(it->first);
            it = files.erase(it);
        } else {
            ++it;
        }
    }
    return forgotten;
}

std::optional<std::string> read_state_file(const std::string &path, std::optional<std::string> &text)
{
    text.reset();
    std::ifstream in(path);
    if (!in)
        return errno == ENOENT ? std::nullopt : std::optional<std::string>(path + ": " + std::strerror(errno));
    std::stringstream all;
    all << in.rdbuf();
    text = all.str();
    return std::nullopt;
}

std::variant<Cursor, std::string> load_cursor(const std::string &path)
{
    std::optional<std::string> text;
    if (auto e = read_state_file(path, text))
        return *e;
    if (!text)
        return Cursor{};
    try {
        const auto j = json::parse(*text);
        switch (json_int<int>(j.at("version"))) {
        case 1:
            return from_v1(j);
        case 2:
            return from_v2(j);
        default:
            return path + ": unknown cursor version";
        }
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
    json files = json::object();
    for (const auto &[key, e] : cursor.files) {
        json ids = json::array(), skipped = json::array();
        for (const FileId &id : e.ids)
            ids.push_back({id.dev, id.ino, id.birth_ns});
        for (const auto &[start, end] : e.skipped)
            skipped.push_back({start, end});
        files[key_text(key)] = {{"path", e.path},
                                {"canonical", key_text(e.canonical)},
                                {"generation", e.generation},
                                {"final", e.final_offset},
                                {"done", e.done_end ? json{*e.done_end, e.done_size} : json(nullptr)},
                                {"fp", {e.fp_len, key_text(e.fp_hash)}},
                                {"ids", ids},
                                {"skipped", skipped},
                                {"missed", e.missed}};
    }
    json legacy = json::object();
    for (const auto &[key, e] : cursor.legacy)
        legacy[key_text(key)] = {{"path", e.path}, {"offset", e.offset}, {"done", e.done}};
    const json j = {{"version", 2}, {"node", cursor.node}, {"scan_from", cursor.scan_from}, {"files", files},
                    {"legacy", legacy}};
    try {
        // A path is only shown in messages: bytes that are not UTF-8 (a
        // Latin-1 file name) are replaced rather than refused.
        return write_atomically(path, j.dump(1, ' ', false, json::error_handler_t::replace) + "\n", true);
    } catch (const std::exception &e) {
        return std::string("cannot encode the cursor: ") + e.what();
    }
}

} // namespace mtalog::ship
