// The parsed form of a Momentum-syntax config file: options and blocks, each
// remembering where it was written so every later error can point at it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace mtacfg {

struct Location {
    std::string file;
    int line = 0;
    int column = 0;
    // "file:line:column", or "file" when the line is not known
    [[nodiscard]] std::string render() const;
};

struct ConfigError {
    Location where;
    std::string message;
    // "file:line:column: message"
    [[nodiscard]] std::string render() const;
};

struct Option {
    std::string name; // as written
    Location where;   // of the name
    std::string value;
    Location value_where;
};

struct Block {
    std::string kind;                    // e.g. "mtalog", "Binding_Group"
    std::optional<std::string> instance; // e.g. "main"
    Location where;
    std::vector<Option> options;
    std::vector<Block> blocks;
};

struct Document {
    std::vector<Option> options;
    std::vector<Block> blocks;
};

// ASCII case-insensitive equality, for option and block names.
[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept;
[[nodiscard]] std::string to_lower(std::string_view s);

} // namespace mtacfg
