#include "template_format.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>

namespace mtalog {

namespace {

// Macro indices, in the order of the table below.
enum M : int {
    m_vctx_mess, m_vctx_conn, m_binding_slot, m_err_names, m_err, m_peer_port, m_peer_ip, m_peer_host, m_peer, m_errno, m_us, m_BI,
    m_CI, m_t, m_T, m_i, m_r, m_R, m_m, m_M, m_d, m_b, m_g, m_n, m_N, m_B, m_H, m_s, m_S,
};

} // namespace

const std::vector<MacroInfo> &template_macros()
{
    // clang-format off
    static const std::vector<MacroInfo> table{
        {"vctx_mess",    MacroArg::required_braces,   kMessageKinds, "`%vctx_mess{key}`: value of `key` in the message's validation context"},
        {"vctx_conn",    MacroArg::required_braces,   kMessageKinds, "`%vctx_conn{key}`: value of `key` in the connection's validation context"},
        {"binding_slot", MacroArg::none,              kAllKinds,     "binding slot number (mtalog)"},
        {"err_names",    MacroArg::none,              kConnFail,     "`CONN_*` names of `err`, joined by `|` (mtalog)"},
        {"err",          MacroArg::none,              kConnFail,     "`err` in decimal (mtalog)"},
        {"peer_port",    MacroArg::none,              kAllKinds,     "peer port (mtalog; other kinds than connection failures: Exim adapter only)"},
        {"peer_ip",      MacroArg::none,              kAllKinds,     "peer IP address (mtalog; ditto)"},
        {"peer_host",    MacroArg::none,              kAllKinds,     "peer host name (mtalog; Exim adapter only)"},
        {"peer",         MacroArg::none,              kAllKinds,     "peer as `a.b.c.d:port` or `[v6]:port` (mtalog; ditto)"},
        {"errno",        MacroArg::none,              kConnFail,     "the system errno behind `err` (mtalog; Exim adapter only)"},
        {"us",           MacroArg::decimals_required, kAllKinds,     "`%us{N}`: unix time with N decimals, 1-6"},
        {"BI",           MacroArg::none,              kMessageKinds, "batch id"},
        {"CI",           MacroArg::none,              kMessageKinds, "connection id"},
        {"t",            MacroArg::optional_braces,   kAllKinds,     "unix time in seconds; `%t{strftime}`: local time formatted by strftime(3)"},
        {"T",            MacroArg::decimals_optional, kMessageKinds, "time in queue in whole seconds; `%T{N}`: with N decimals, 0-6"},
        {"i",            MacroArg::none,              kAllKinds,     "message id (connection failures: Exim adapter only)"},
        {"r",            MacroArg::none,              kMessageKinds, "recipient local part"},
        {"R",            MacroArg::none,              kMessageKinds, "recipient domain"},
        {"m",            MacroArg::none,              kMessageKinds, "sender local part"},
        {"M",            MacroArg::none,              kMessageKinds, "sender domain"},
        {"d",            MacroArg::none,              kAllKinds,     "routing domain"},
        {"b",            MacroArg::none,              kAllKinds,     "binding name"},
        {"g",            MacroArg::none,              kAllKinds,     "binding group name"},
        {"n",            MacroArg::none,              kMessageKinds, "note / DSN text, capped at `max_note_bytes`"},
        {"N",            MacroArg::none,              kMessageKinds, "number of delivery attempts"},
        {"B",            MacroArg::none,              kMessageKinds, "message size in bytes"},
        {"H",            MacroArg::none,              kMessageKinds, "remote IP of the delivery attempt"},
        {"s",            MacroArg::none,              kMessageKinds, "connection stage name, e.g. `rcpt_to`"},
        {"S",            MacroArg::none,              kMessageKinds, "connection stage number"},
    };
    // clang-format on
    return table;
}

std::variant<CompiledTemplate, TemplateError> CompiledTemplate::compile(std::string_view text, RecordKind kind)
{
    const auto &macros = template_macros();
    // Longest names first, so %vctx_mess wins over %v... and %binding_slot over %b.
    std::vector<int> by_length(macros.size());
    for (std::size_t i = 0; i < macros.size(); ++i)
        by_length[i] = static_cast<int>(i);
    std::stable_sort(by_length.begin(), by_length.end(),
                     [&](int a, int b) { return macros[a].name.size() > macros[b].name.size(); });

    CompiledTemplate t;
    std::string literal;
    auto flush_literal = [&] {
        if (!literal.empty())
            t.items_.push_back(Item{-1, std::move(literal), 0});
        literal.clear();
    };
    std::size_t i = 0;
    while (i < text.size()) {
        if (text[i] != '%') {
            // A record is one line without control bytes, whatever the template.
            if (const auto byte = static_cast<unsigned char>(text[i]); byte < 0x20 || byte == 0x7f) {
                static constexpr char kHex[] = "0123456789ABCDEF";
                return TemplateError{i, std::string("control character \\x") + kHex[byte >> 4] + kHex[byte & 15] +
                                            " in the template: a record is one line of text"};
            }
            literal += text[i++];
            continue;
        }
        const std::size_t at = i;
        if (i + 1 < text.size() && text[i + 1] == '%') {
            literal += '%';
            i += 2;
            continue;
        }
        int found = -1;
        for (int index : by_length) {
            if (text.substr(i + 1, macros[index].name.size()) == macros[index].name) {
                found = index;
                break;
            }
        }
        if (found < 0) {
            const std::size_t end = std::min(text.size(), i + 2);
            return TemplateError{at, "unknown macro '" + std::string(text.substr(at, end - at)) +
                                         "' (see docs/formats.md; write %% for a literal %)"};
        }
        const MacroInfo &info = macros[found];
        if ((info.kinds & kind_bit(kind)) == 0)
            return TemplateError{at, "macro '%" + std::string(info.name) + "' means nothing for " +
                                         std::string(mtacfg::record_name(kind)) + " records"};
        i += 1 + info.name.size();
        Item item{found, {}, 0};
        const bool has_braces = i < text.size() && text[i] == '{';
        const bool wants_braces = info.arg != MacroArg::none;
        if ((info.arg == MacroArg::required_braces || info.arg == MacroArg::decimals_required) && !has_braces)
            return TemplateError{at, "macro '%" + std::string(info.name) + "' needs an argument in braces, e.g. %" +
                                         std::string(info.name) +
                                         (info.arg == MacroArg::decimals_required ? "{3}" : "{key}")};
        if (has_braces && wants_braces) {
            const std::size_t close = text.find('}', i);
            if (close == std::string_view::npos)
                return TemplateError{i, "unclosed '{' after '%" + std::string(info.name) + "'"};
            item.text = std::string(text.substr(i + 1, close - i - 1));
            if (item.text.empty())
                return TemplateError{i, "empty argument for '%" + std::string(info.name) + "'"};
            if (info.arg == MacroArg::decimals_required || info.arg == MacroArg::decimals_optional) {
                const int lo = info.arg == MacroArg::decimals_required ? 1 : 0;
                if (item.text.size() != 1 || item.text[0] < '0' + lo || item.text[0] > '6')
                    return TemplateError{i + 1, "'%" + std::string(info.name) + "{" + item.text +
                                                    "}' needs a number of decimals from " + std::to_string(lo) +
                                                    " to 6"};
                item.number = item.text[0] - '0';
            }
            i = close + 1;
        }
        flush_literal();
        t.items_.push_back(std::move(item));
    }
    flush_literal();
    return t;
}

namespace {

void text_or_nothing(Buffer &out, const char *text) { append_field_text(out, text, 0); }

void dict_value(Buffer &out, const ec_dict &dict, const std::string &key)
{
    if (dict.items == nullptr)
        return;
    for (std::size_t k = 0; k < dict.count; ++k) {
        if (dict.items[k].key && key == dict.items[k].key) {
            text_or_nothing(out, dict.items[k].value);
            return;
        }
    }
}

void local_time(Buffer &out, const timeval &now, const std::string &format)
{
    std::tm tm{};
    const std::time_t secs = now.tv_sec;
    localtime_r(&secs, &tm);
    char buf[256];
    const std::size_t n = std::strftime(buf, sizeof buf, format.c_str(), &tm);
    append_escaped(out, std::string_view(buf, n), 0);
}

} // namespace

void CompiledTemplate::format(const Record &r, const FormatContext &ctx, Buffer &out) const
{
    const ec_message *m = r.kind == RecordKind::connection_failure ? nullptr : r.msg;
    for (const Item &item : items_) {
        switch (item.macro) {
        case -1: put(out, item.text); break;
        case m_vctx_mess: if (m) dict_value(out, m->vctx_mess, item.text); break;
        case m_vctx_conn: if (m) dict_value(out, m->vctx_conn, item.text); break;
        case m_binding_slot: if (const auto slot = binding_slot_of(r)) put_int(out, *slot); break;
        case m_err_names: append_conn_flag_names(out, r.err, '|'); break;
        case m_err: put_int(out, r.err); break;
        case m_peer_port: if (const Peer p = peer_of(r.addr); p.known) put_int(out, p.port); break;
        case m_peer_ip: if (const Peer p = peer_of(r.addr); p.known) put(out, p.ip); break;
        case m_peer: append_peer_address(out, r.addr); break;
        case m_peer_host: text_or_nothing(out, r.peer_host); break;
        case m_errno: if (r.os_errno) put_int(out, *r.os_errno); break;
        case m_us:
            append_seconds(out, static_cast<long long>(r.now.tv_sec) * 1000000LL + r.now.tv_usec, item.number);
            break;
        case m_BI: if (m) append_message_id(out, ctx, m->batch_id, 0, r.cache); break;
        case m_CI: if (m) append_message_id(out, ctx, m->conn_id, 0, r.cache); break;
        case m_t:
            if (item.text.empty())
                put_int(out, static_cast<long long>(r.now.tv_sec));
            else
                local_time(out, r.now, item.text);
            break;
        case m_T: if (const auto q = queue_micros(r)) append_seconds(out, *q, item.number); break;
        case m_i: if (r.msg) append_message_id(out, ctx, r.msg->id, 0); break;
        case m_r: if (m) text_or_nothing(out, m->rcptto_local); break;
        case m_R: if (m) text_or_nothing(out, m->rcptto_domain); break;
        case m_m: if (m) text_or_nothing(out, m->mailfrom_local); break;
        case m_M: if (m) text_or_nothing(out, m->mailfrom_domain); break;
        case m_d: text_or_nothing(out, r.dr ? r.dr->domain : nullptr); break;
        case m_b: text_or_nothing(out, binding_names_of(r, ctx).name); break;
        case m_g: text_or_nothing(out, binding_names_of(r, ctx).group); break;
        case m_n: if (r.has_note) append_escaped_capped(out, r.note, 0, ctx.max_note_bytes); break;
        case m_N: if (m) put_int(out, m->num_retries); break;
        case m_B: if (m) put_int(out, static_cast<long long>(m->size)); break;
        case m_H: if (m) text_or_nothing(out, m->remote_ip); break;
        case m_s: if (m) text_or_nothing(out, stage_name(m->stage)); break;
        case m_S: if (m) put_int(out, m->stage); break;
        default: break;
        }
    }
}

} // namespace mtalog
