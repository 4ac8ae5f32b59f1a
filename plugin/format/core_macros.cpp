#include "core_macros.hpp"

namespace mtalog {

void write_protocol(const Record &r, const FormatContext &ctx, Buffer &out, const std::string &, int)
{
    ec_core *core = ctx.core;
    if (r.msg == nullptr || core == nullptr || !EC_CORE_HAS(core, message_protocol))
        return;
    append_field_text(out, core->message_protocol(core, r.msg), 0);
}

void write_header(const Record &r, const FormatContext &ctx, Buffer &out, const std::string &name, int)
{
    ec_core *core = ctx.core;
    if (r.msg == nullptr || core == nullptr || !EC_CORE_HAS(core, message_header))
        return;
    const char *value = nullptr;
    std::size_t length = 0;
    if (core->message_header(core, r.msg, name.c_str(), &value, &length) != 0 || value == nullptr)
        return;
    append_escaped_capped(out, std::string_view(value, length), 0, kMaxFieldBytes);
}

} // namespace mtalog
