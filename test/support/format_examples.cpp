#include "format_examples.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "core.hpp"
#include "bounce_rules.hpp"
#include "fields.hpp"
#include "formatter.hpp"

namespace testing {

namespace {

using namespace mtalog;

std::string kinds_text(KindMask kinds)
{
    if (kinds == kAllKinds)
        return "all";
    std::string out;
    for (mtacfg::RecordKind k : mtacfg::kAllRecordKinds)
        if (kinds & kind_bit(k))
            out += (out.empty() ? "" : ", ") + std::string(mtacfg::record_name(k));
    return out;
}

std::string type_text(FieldType t)
{
    switch (t) {
    case FieldType::string: return "string";
    case FieldType::integer: return "integer";
    case FieldType::decimal: return "number";
    case FieldType::string_list: return "list of strings";
    }
    return "?";
}

} // namespace

std::string render_format_docs()
{
    mtacore::Core core;
    core.set_bindings({{"mta1", "pool-a"}, {"mta2", "pool-a"}});
    FormatContext ctx;
    ctx.core = core.c_api();
    const auto rules = std::get<std::shared_ptr<const BounceRules>>(
        BounceRules::compile({{std::string(kDefaultBounceRules), std::string(kDefaultBounceRulesName)}}));
    ctx.bounce_rules = rules.get();

    ec_kv campaign{"campaign", "spring-sale"};
    ec_message msg{};
    msg.id = message_id{0x31B987F3u, 25004, 0};
    msg.batch_id = message_id{0x31B987F0u, 25004, 0};
    msg.conn_id = message_id{0x31B987F1u, 25004, 0};
    msg.creation_time = timeval{1699999990, 0};
    msg.binding_slot = 1;
    msg.mailfrom_local = "bounces";
    msg.mailfrom_domain = "sender.example";
    msg.rcptto_local = "bob";
    msg.rcptto_domain = "example.com";
    msg.size = 2048;
    msg.num_retries = 1;
    msg.stage = EC_STAGE_RCPT_TO;
    msg.remote_ip = "192.0.2.55";
    msg.vctx_mess = ec_dict{&campaign, 1};
    char domain[] = "example.com";
    domain_record dr{domain, 0, 0};
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(25);
    inet_pton(AF_INET, "192.0.2.1", &peer.sin_addr);

    Record attempt;
    attempt.kind = RecordKind::attempt;
    attempt.now = timeval{1700000000, 250000};
    attempt.msg = &msg;
    attempt.dr = &dr;
    attempt.note = "451 4.7.1 <bob@example.com>: Recipient address rejected: Greylisted, try again in 300 seconds";
    attempt.has_note = true;
    Record failure = attempt;
    failure.kind = RecordKind::permanent_failure;
    failure.now = timeval{1700000001, 0};
    failure.note = "550 5.1.1 <bob@example.com>: User unknown\r\nforged line";
    Record conn;
    conn.kind = RecordKind::connection_failure;
    conn.now = timeval{1700000002, 500000};
    conn.dr = &dr;
    conn.addr = reinterpret_cast<sockaddr *>(&peer);
    conn.err = CONN_ERROR_CONNECT | CONN_ACTION_REQUEUE1;
    conn.binding_slot = 2;

    std::string out = "### Fields (JSON keys, CSV columns)\n\n| field | type | records | meaning |\n| --- | --- | --- | --- |\n";
    for (const FieldInfo &f : kFields)
        out += "| `" + std::string(f.name) + "` | " + type_text(f.type) + " | " + kinds_text(f.kinds) + " | " +
               std::string(f.meaning) + " |\n";
    out += "\n### Template macros\n\n| macro | records | meaning |\n| --- | --- | --- |\n";
    for (const MacroInfo &m : template_macros())
        out += "| `%" + std::string(m.name) + "` | " + kinds_text(m.kinds) + " | " + std::string(m.meaning) + " |\n";
    out += "| `%%` | all | a literal `%` |\n";

    struct Example {
        const char *title;
        mtacfg::FormatSpec spec;
    };
    const Example examples[] = {
        {"mainlog", {mtacfg::FormatKind::mainlog, {}}},
        {"json", {mtacfg::FormatKind::json, {}}},
        {"csv", {mtacfg::FormatKind::csv, {}}},
        {"template `%us{3} %i %r@%R %s %vctx_mess{campaign} [%C %c] %n` (attempt, permanent_failure) and "
         "`%us{3} C %d %peer %err_names` (connection_failure)",
         {mtacfg::FormatKind::custom, "%us{3} %i %r@%R %s %vctx_mess{campaign} [%C %c] %n"}},
    };
    out += "\n### Examples\n\nThe same attempt, connection failure and permanent failure (whose DSN tries to "
           "forge a second line) in each format:\n";
    for (const Example &e : examples) {
        out += "\n" + std::string(e.title) + ":\n\n```\n";
        auto message_formatter = std::get<std::unique_ptr<Formatter>>(make_formatter(e.spec, true, kMessageKinds));
        auto conn_spec = e.spec;
        if (conn_spec.kind == mtacfg::FormatKind::custom)
            conn_spec.template_text = "%us{3} C %d %peer %err_names";
        auto conn_formatter = std::get<std::unique_ptr<Formatter>>(make_formatter(conn_spec, true, kConnFail));
        if (const std::string header = message_formatter->header(); !header.empty())
            out += header + "\n";
        for (const Record *r : {&attempt, &conn, &failure}) {
            Buffer line;
            (r == &conn ? conn_formatter : message_formatter)->format(*r, ctx, line);
            out += fmt::to_string(line) + "\n";
        }
        out += "```\n";
    }
    return out;
}

} // namespace testing
