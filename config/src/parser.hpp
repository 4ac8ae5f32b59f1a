// Momentum config syntax: `#` and `/* */` comments, `name = value`, blocks
// `kind ["instance"] { ... }` (nested), values bare or quoted ("..." with \"
// and \\ escapes, '...' literal), and `include "path"` of a file or of a
// directory (its files in lexical order; relative to the including file).
#pragma once

#include <string>
#include <variant>

#include "document.hpp"

namespace mtacfg {

using ParseResult = std::variant<Document, ConfigError>;

[[nodiscard]] ParseResult parse_file(const std::string &path);

// `name` is used as the file name in locations.
[[nodiscard]] ParseResult parse_text(const std::string &text, const std::string &name);

} // namespace mtacfg
