// Which instance in this process writes which file: one file has one
// writer. Two instances writing one file would each rotate it, apply
// retention to it and write its CSV header on their own.
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

    // Records that `owner` writes `path` (a `kind`: "log file", "metrics_file"),
    // named at `where`. Returns an error text naming the other owner and its
    // position if another owner does.
    std::optional<std::string> claim(const std::string &path, const mtacfg::Location &where, const void *owner,
                                     const std::string &owner_label, const char *kind = "log file");
    void release(const void *owner);

private:
    struct Claim {
        mtacfg::Location where;
        const void *owner;
        std::string owner_label;
    };
    std::mutex mutex_;
    std::multimap<std::string, Claim> claims_;
};

} // namespace mtalog
