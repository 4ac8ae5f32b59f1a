// The template compiler on arbitrary templates: compile for each record kind,
// and evaluate what compiles on a record full of hostile text.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core.hpp"
#include "fuzz_invariants.hpp"
#include "template_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static mtacore::Core core;
    const std::string text(reinterpret_cast<const char *>(data), size);
    mtalog::FormatContext ctx;
    ctx.core = core.c_api();
    ctx.max_note_bytes = 128;
    ec_kv kv{"k", "v\r\nw"};
    ec_message msg{};
    msg.id = message_id{1, 2, 3};
    msg.rcptto_local = "a\x01@b";
    msg.vctx_mess = ec_dict{&kv, 1};
    char domain[] = "d\xff\n";
    domain_record dr{domain, 0, 0};
    for (mtacfg::RecordKind kind : mtacfg::kAllRecordKinds) {
        auto compiled = mtalog::CompiledTemplate::compile(text, kind);
        if (auto *error = std::get_if<mtalog::TemplateError>(&compiled)) {
            if (error->offset > text.size() || error->message.empty())
                __builtin_trap();
            continue;
        }
        mtalog::Record r;
        r.kind = kind;
        r.now = timeval{1700000000, 1};
        r.msg = &msg;
        r.dr = &dr;
        r.note = "n\r\n";
        r.has_note = true;
        mtalog::Buffer out;
        std::get<mtalog::CompiledTemplate>(compiled).format(r, ctx, out);
        fuzzing::check_line(std::string_view(out.data(), out.size())); // whatever template compiled
    }
    return 0;
}
