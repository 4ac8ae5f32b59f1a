// Formats one permanent-failure record N times with one formatter, for
// scripts/bench-formats: `format_cost FORMAT N` prints the line it wrote and
// the wall-clock ns per record. The P-line template produces exactly the
// mainlog line, so the two compare compiled templates with hand-written code.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core.hpp"
#include "formatter.hpp"

using namespace mtalog;

int main(int argc, char **argv)
{
    if (argc != 3) {
        std::fprintf(stderr, "usage: format_cost mainlog|template|json|csv N\n");
        return 64;
    }
    const std::string name = argv[1];
    const long n = std::atol(argv[2]);
    // A format name; "template" is the %-template of the mainlog P line.
    if (name != "mainlog" && name != "json" && name != "csv" && name != "template")
        return 64;
    const auto spec = mtacfg::parse_format(name == "template" ? "%t@%i@%BI@%CI@P@%d@%B@%g@%b@%S@%N@%T@%H@%n" : name);
    auto made = make_formatter(*spec, true, kPermFail);
    if (!std::holds_alternative<std::unique_ptr<Formatter>>(made))
        return 1;
    const Formatter &formatter = *std::get<std::unique_ptr<Formatter>>(made);

    mtacore::Core core;
    core.set_bindings({{"mta1", "pool-a"}});
    FormatContext ctx;
    ctx.core = core.c_api();
    ec_message msg{};
    msg.id = message_id{0x31B987F3u, 25004, 0x0001};
    msg.batch_id = message_id{0x31B987F0u, 25004, 0};
    msg.conn_id = message_id{0x31B987F1u, 25004, 0};
    msg.creation_time = timeval{1699996400, 0};
    msg.binding_slot = 1;
    msg.size = 4096;
    msg.num_retries = 2;
    msg.stage = EC_STAGE_AFTER_RCPT_TO;
    msg.remote_ip = "192.0.2.56";
    char domain[] = "example.com";
    domain_record dr{domain, 0, 0};
    const char note[] = "550 5.1.1 <bob.smith@example.com>: Recipient address rejected: User unknown in virtual "
                        "mailbox table";
    Record r;
    r.kind = RecordKind::permanent_failure;
    r.now = timeval{1700000000, 0};
    r.msg = &msg;
    r.dr = &dr;
    r.note = note;
    r.has_note = true;

    Buffer line;
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < n; ++i) {
        line.clear();
        formatter.format(r, ctx, line);
    }
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    std::printf("%.*s\n%.1f\n", static_cast<int>(line.size()), line.data(), n > 0 ? ns / static_cast<double>(n) : 0.0);
    return 0;
}
