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

// A file of secrets (a credentials file): `name = value` only (no blocks, no
// include), and an error says where and what is wrong without quoting any of
// the file's text, so a secret never reaches a message.
[[nodiscard]] ParseResult parse_secrets(const std::string &text, const std::string &name);

// Where byte `offset` of a value read at `value_at` stands in the source:
// in a double-quoted value each \" and \\ takes two columns for one byte.
// The line is read back from value_at.file; if it cannot be (a config that
// came from memory), one column a byte is assumed.
[[nodiscard]] Location value_location(const Location &value_at, std::size_t offset);

} // namespace mtacfg
