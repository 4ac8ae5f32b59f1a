// The core's own part of the config: modules_path, the binding table, and
// which blocks are module stanzas (every block that is not the core's).
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "core.hpp"
#include "document.hpp"

namespace mtacore {

struct CoreConfig {
    std::string modules_path;
    std::vector<Binding> bindings; // slots 1, 2, ... in config order
    std::vector<mtacfg::Block> module_stanzas;
};

// `kind` or `kind "instance"`, as messages name a stanza.
[[nodiscard]] std::string stanza_label(const mtacfg::Block &stanza);

// `default_modules_path` applies when the config sets none.
[[nodiscard]] std::variant<CoreConfig, mtacfg::ConfigError> read_core_config(const mtacfg::Document &doc,
                                                                             const std::string &default_modules_path);

} // namespace mtacore
