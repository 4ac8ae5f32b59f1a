#include "core_config.hpp"

#include <map>

#include "suggest.hpp"

namespace mtacore {

using mtacfg::Block;
using mtacfg::ConfigError;
using mtacfg::iequals;

namespace {

std::string stanza_key(const Block &b)
{
    return mtacfg::to_lower(b.kind) + (b.instance ? "\"" + *b.instance + "\"" : std::string());
}


struct BindingReader {
    std::vector<Binding> &out;
    std::map<std::string, mtacfg::Location> seen;

    std::optional<ConfigError> add(const Block &b, const std::string &group)
    {
        if (!b.instance || b.instance->empty())
            return ConfigError{b.where, "a Binding needs a name: Binding \"name\" { ... }"};
        if (!b.blocks.empty())
            return ConfigError{b.blocks.front().where, "unexpected block '" + b.blocks.front().kind +
                                                           "' inside Binding \"" + *b.instance + "\""};
        if (auto it = seen.find(*b.instance); it != seen.end())
            return ConfigError{b.where, "Binding \"" + *b.instance + "\" is defined twice (first at line " +
                                            std::to_string(it->second.line) + ")"};
        seen.emplace(*b.instance, b.where);
        out.push_back(Binding{*b.instance, group});
        return std::nullopt;
    }

    std::optional<ConfigError> add_group(const Block &g)
    {
        if (!g.instance || g.instance->empty())
            return ConfigError{g.where, "a Binding_Group needs a name: Binding_Group \"name\" { ... }"};
        for (const auto &inner : g.blocks) {
            if (!iequals(inner.kind, "Binding"))
                return ConfigError{inner.where, "unexpected block '" + inner.kind + "' inside Binding_Group \"" +
                                                    *g.instance + "\"" +
                                                    mtacfg::did_you_mean(inner.kind, {"Binding"})};
            if (auto e = add(inner, *g.instance))
                return e;
        }
        return std::nullopt;
    }
};

} // namespace

std::string stanza_label(const Block &b)
{
    return b.kind + (b.instance ? " \"" + *b.instance + "\"" : std::string());
}

std::variant<CoreConfig, ConfigError> read_core_config(const mtacfg::Document &doc,
                                                       const std::string &default_modules_path)
{
    CoreConfig config;
    config.modules_path = default_modules_path;
    bool have_modules_path = false;
    for (const auto &opt : doc.options) {
        if (iequals(opt.name, "modules_path")) {
            if (have_modules_path)
                return ConfigError{opt.where, "option 'modules_path' is set twice"};
            if (opt.value.empty())
                return ConfigError{opt.value_where, "modules_path must not be empty"};
            config.modules_path = opt.value;
            have_modules_path = true;
            continue;
        }
        return ConfigError{opt.where, "unknown core option '" + opt.name + "'" +
                                          mtacfg::did_you_mean(opt.name, {"modules_path"}) +
                                          "; module options belong inside their stanza"};
    }
    BindingReader bindings{config.bindings, {}};
    std::map<std::string, mtacfg::Location> stanzas;
    for (const auto &block : doc.blocks) {
        if (iequals(block.kind, "Binding_Group")) {
            if (auto e = bindings.add_group(block))
                return *e;
        } else if (iequals(block.kind, "Binding")) {
            if (auto e = bindings.add(block, "default"))
                return *e;
        } else {
            if (!block.blocks.empty())
                return ConfigError{block.blocks.front().where, "unexpected block '" + block.blocks.front().kind +
                                                                   "' inside " + stanza_label(block)};
            const auto key = stanza_key(block);
            if (auto it = stanzas.find(key); it != stanzas.end())
                return ConfigError{block.where, "duplicate stanza " + stanza_label(block) + " (first at line " +
                                                    std::to_string(it->second.line) + ")"};
            stanzas.emplace(key, block.where);
            config.module_stanzas.push_back(block);
        }
    }
    return config;
}

} // namespace mtacore
