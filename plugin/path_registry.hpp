// Which instance in this process writes which file, so that two instances
// cannot write one file in different formats.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "mtalog_options.hpp"

namespace mtalog {

class PathRegistry {
public:
    static PathRegistry &global();

    // Records that `owner` writes `path` in `format`. Returns an error text if
    // another owner writes it in another format.
    std::optional<std::string> claim(const std::string &path, const mtacfg::FormatSpec &format, const void *owner,
                                     const std::string &owner_label);
    void release(const void *owner);

private:
    struct Claim {
        mtacfg::FormatSpec format;
        const void *owner;
        std::string owner_label;
    };
    std::mutex mutex_;
    std::multimap<std::string, Claim> claims_;
};

} // namespace mtalog
