// The config parser and the mtalog stanza validation on arbitrary text: any
// input gives a document or one error with a position, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core_config.hpp"
#include "mtalog_options.hpp"
#include "parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    auto parsed = mtacfg::parse_text(text, "fuzz.conf");
    if (auto *error = std::get_if<mtacfg::ConfigError>(&parsed)) {
        if (error->where.line < 1 || error->message.empty())
            __builtin_trap(); // every syntax error has a position and a message
        return 0;
    }
    const auto &doc = std::get<mtacfg::Document>(parsed);
    (void)mtacore::read_core_config(doc, "modules");
    for (const auto &block : doc.blocks)
        (void)mtacfg::validate_mtalog(block.options, block.instance.value_or(""), block.where);
    return 0;
}
