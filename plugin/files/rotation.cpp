#include "rotation.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>

namespace mtalog {

namespace fs = std::filesystem;

std::string rotated_name(const std::string &path, std::time_t when, bool utc, unsigned n)
{
    std::tm tm{};
    if (utc)
        gmtime_r(&when, &tm);
    else
        localtime_r(&when, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    std::string name = path + "." + stamp;
    if (n > 0)
        name += "-" + std::to_string(n);
    return name;
}

bool is_rotated_name(std::string_view name, std::string_view base)
{
    if (name.size() < base.size() + 16 || name.substr(0, base.size()) != base || name[base.size()] != '.')
        return false;
    std::string_view rest = name.substr(base.size() + 1);
    auto digits = [](std::string_view s) {
        return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    };
    if (!digits(rest.substr(0, 8)) || rest[8] != '-' || !digits(rest.substr(9, 6)))
        return false;
    rest = rest.substr(15);
    for (std::string_view ext : {".gz", ".zst"}) {
        if (rest.size() >= ext.size() && rest.substr(rest.size() - ext.size()) == ext) {
            rest = rest.substr(0, rest.size() - ext.size());
            break;
        }
    }
    return rest.empty() || (rest[0] == '-' && digits(rest.substr(1)) && rest.size() <= 7);
}

namespace {

// Rotated files of `path` as (sort key, path), oldest first: the key is the
// stamp and the -N number, the same for every form of one rotation.
std::vector<std::pair<std::string, std::string>> rotated_entries(const std::string &path)
{
    const fs::path p(path);
    const std::string base = p.filename().string();
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    std::vector<std::pair<std::string, std::string>> found;
    std::error_code ec;
    // increment(ec), not ++: a read error ends the listing, it does not throw.
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        std::error_code entry_error; // one entry gone meanwhile does not end the listing
        if (!is_rotated_name(name, base) || !it->is_regular_file(entry_error))
            continue;
        std::string key = name.substr(base.size() + 1, 15);
        std::string rest = name.substr(base.size() + 16);
        for (std::string_view ext : {".gz", ".zst"})
            if (rest.size() >= ext.size() && rest.compare(rest.size() - ext.size(), ext.size(), ext) == 0)
                rest.resize(rest.size() - ext.size());
        const int n = rest.empty() ? 0 : std::stoi(rest.substr(1));
        char number[16];
        std::snprintf(number, sizeof number, "%08d", n);
        found.emplace_back(key + number, it->path().string());
    }
    std::sort(found.begin(), found.end());
    return found;
}

} // namespace

std::vector<std::string> rotated_files(const std::string &path)
{
    std::vector<std::string> out;
    for (auto &f : rotated_entries(path))
        out.push_back(std::move(f.second));
    return out;
}

std::vector<std::string> apply_retention(const std::string &path, std::size_t keep, const std::set<std::string> &busy)
{
    std::vector<std::string> deleted;
    if (keep == 0)
        return deleted;
    const auto files = rotated_entries(path);
    std::vector<std::string> rotations; // distinct keys, oldest first
    for (const auto &f : files)
        if (rotations.empty() || rotations.back() != f.first)
            rotations.push_back(f.first);
    if (rotations.size() <= keep)
        return deleted;
    const std::set<std::string> old(rotations.begin(), rotations.end() - static_cast<std::ptrdiff_t>(keep));
    for (const auto &[key, file] : files) {
        std::error_code ec;
        if (old.count(key) != 0 && busy.count(file) == 0 && fs::remove(file, ec))
            deleted.push_back(file);
    }
    return deleted;
}

std::time_t next_rotation_time(std::time_t now, mtacfg::RotateInterval interval, bool utc)
{
    if (interval == mtacfg::RotateInterval::none)
        return 0;
    std::tm tm{};
    if (utc)
        gmtime_r(&now, &tm);
    else
        localtime_r(&now, &tm);
    tm.tm_min = 0;
    tm.tm_sec = 0;
    if (interval == mtacfg::RotateInterval::hourly) {
        tm.tm_hour += 1;
    } else {
        tm.tm_hour = 0;
        tm.tm_mday += 1;
    }
    tm.tm_isdst = -1;
    return utc ? timegm(&tm) : mktime(&tm);
}

} // namespace mtalog
