// Replay lines (JSON) through a core whose hooks format every record in all
// four formats and check each line's invariants.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "core.hpp"
#include "formatter.hpp"
#include "fuzz_invariants.hpp"
#include "replay.hpp"

namespace {

struct Formats {
    std::unique_ptr<mtalog::Formatter> all[4];
    Formats()
    {
        const mtacfg::FormatSpec specs[4] = {{mtacfg::FormatKind::mainlog, {}},
                                             {mtacfg::FormatKind::json, {}},
                                             {mtacfg::FormatKind::csv, {}},
                                             {mtacfg::FormatKind::custom, "%t %i %d %b %g %n %T{3} %vctx_mess{k}"}};
        for (int i = 0; i < 4; ++i)
            all[i] = std::get<std::unique_ptr<mtalog::Formatter>>(mtalog::make_formatter(specs[i], true, mtalog::kMessageKinds));
    }
};

mtacore::Core *core_ptr;

void emit(const mtalog::Record &r)
{
    static Formats formats;
    static mtacfg::FormatSpec conn_spec{mtacfg::FormatKind::custom, "%t %peer %err_names %binding_slot"};
    static auto conn_template =
        std::get<std::unique_ptr<mtalog::Formatter>>(mtalog::make_formatter(conn_spec, true, mtalog::kConnFail));
    mtalog::FormatContext ctx;
    ctx.core = core_ptr->c_api();
    ctx.max_note_bytes = 256;
    for (int i = 0; i < 4; ++i) {
        const mtalog::Formatter &f = (i == 3 && r.kind == mtalog::RecordKind::connection_failure) ? *conn_template
                                                                                                  : *formats.all[i];
        mtalog::Buffer line;
        f.format(r, ctx, line);
        fuzzing::check_line(std::string_view(line.data(), line.size()));
    }
}

void on_message(mtalog::RecordKind kind, ec_message *msg, domain_record *dr, timeval *now, const char *note, int len)
{
    mtalog::Record r;
    r.kind = kind;
    r.now = now ? mtalog::record_time(*now) : timeval{1700000000, 0};
    r.msg = msg;
    r.dr = dr;
    if (note && len >= 0) {
        r.note = std::string_view(note, static_cast<std::size_t>(len));
        r.has_note = true;
    }
    emit(r);
}

void attempt(void *, ec_message *m, domain_record *d, timeval *t, const char *n, int l)
{
    on_message(mtalog::RecordKind::attempt, m, d, t, n, l);
}
void failure(void *, ec_message *m, domain_record *d, timeval *t, const char *n, int l)
{
    on_message(mtalog::RecordKind::permanent_failure, m, d, t, n, l);
}
void connfail(void *, sockaddr *addr, int err, domain_record *d, int slot, timeval *t)
{
    mtalog::Record r;
    r.kind = mtalog::RecordKind::connection_failure;
    r.now = t ? mtalog::record_time(*t) : timeval{1700000000, 0};
    r.addr = addr;
    r.err = err;
    r.dr = d;
    r.binding_slot = slot;
    emit(r);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
    static mtacore::Core core;
    static bool registered = [] {
        core_ptr = &core;
        core.set_bindings({{"mta1", "pool-a"}});
        ec_core *api = core.c_api();
        core.hooks().open_registration();
        api->register_core_log_attempt_v1_hook_last(api, attempt, nullptr);
        api->register_core_log_permanent_failure_v1_hook_last(api, failure, nullptr);
        api->register_core_log_client_connection_failure_hook_last(api, connfail, nullptr);
        core.hooks().close_registration();
        return true;
    }();
    (void)registered;
    std::istringstream in(std::string(reinterpret_cast<const char *>(data), size));
    std::ostringstream errors;
    std::atomic<bool> stop{false};
    (void)mtacore::replay(core, in, "fuzz", stop, errors);
    return 0;
}
