// The shipper's state directory: made if missing, checked writable, and
// held with a lock for as long as the process runs, so that one shipper (or
// one --audit) at a time uses its cursor.
#pragma once

#include <optional>
#include <string>

namespace mtalog::ship {

class StateDir {
public:
    StateDir() = default;
    ~StateDir();
    StateDir(const StateDir &) = delete;
    StateDir &operator=(const StateDir &) = delete;
    // An error text when the directory cannot be used or another process
    // holds it.
    std::optional<std::string> open(const std::string &dir);

private:
    int fd_ = -1;
};

} // namespace mtalog::ship
