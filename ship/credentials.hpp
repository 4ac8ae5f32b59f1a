// The shipper's credentials file: user and password, or a token, from a
// file nobody else may read, read through one descriptor.
#pragma once

#include <optional>
#include <string>

#include "document.hpp"
#include "ship_config.hpp"

namespace mtalog::ship {

// Fills `out`, or returns the error ("file:line:column: ..."); no message
// quotes the file's text.
std::optional<std::string> read_credentials(const std::string &path, const mtacfg::Location &named_at,
                                            Credentials &out);

} // namespace mtalog::ship
