#include "path_registry.hpp"

namespace mtalog {

PathRegistry &PathRegistry::global()
{
    static PathRegistry registry;
    return registry;
}

std::optional<std::string> PathRegistry::claim(const std::string &path, const mtacfg::Location &where,
                                               const void *owner, const std::string &owner_label, const char *kind)
{
    const std::string key = mtacfg::normalize_path(path);
    std::lock_guard lock(mutex_);
    auto [begin, end] = claims_.equal_range(key);
    for (auto it = begin; it != end; ++it) {
        const Claim &other = it->second;
        if (other.owner != owner)
            return std::string(kind) + " \"" + path + "\" is already written by " + other.owner_label + " (" + other.where.render() + "); one file has one writer: give each instance its own files";
    }
    claims_.emplace(key, Claim{where, owner, owner_label});
    return std::nullopt;
}

void PathRegistry::release(const void *owner)
{
    std::lock_guard lock(mutex_);
    for (auto it = claims_.begin(); it != claims_.end();)
        it = it->second.owner == owner ? claims_.erase(it) : std::next(it);
}

} // namespace mtalog
