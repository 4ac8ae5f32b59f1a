#include "path_registry.hpp"

namespace mtalog {

PathRegistry &PathRegistry::global()
{
    static PathRegistry registry;
    return registry;
}

std::optional<std::string> PathRegistry::claim(const std::string &path, const mtacfg::FormatSpec &format, const void *owner,
                                               const std::string &owner_label)
{
    const std::string key = mtacfg::normalize_path(path);
    std::lock_guard lock(mutex_);
    auto [begin, end] = claims_.equal_range(key);
    for (auto it = begin; it != end; ++it) {
        if (it->second.owner != owner && it->second.format != format)
            return "log file \"" + path + "\" is written by " + it->second.owner_label + " in format " +
                   mtacfg::format_name(it->second.format) + "; " + owner_label +
                   " cannot write it in format " + mtacfg::format_name(format);
    }
    claims_.emplace(key, Claim{format, owner, owner_label});
    return std::nullopt;
}

void PathRegistry::release(const void *owner)
{
    std::lock_guard lock(mutex_);
    for (auto it = claims_.begin(); it != claims_.end();)
        it = it->second.owner == owner ? claims_.erase(it) : std::next(it);
}

} // namespace mtalog
