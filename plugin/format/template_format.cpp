#include "template_format.hpp"

#include "core_macros.hpp"
#include "field_writers.hpp"

#include <algorithm>
#include <cstring>
#include <ctime>

namespace mtalog {

namespace {

void text_or_nothing(Buffer &out, const char *text) { append_field_text(out, text, 0); }

void dict_value(Buffer &out, const ec_message *m, const ec_dict ec_message::*member, const std::string &key)
{
    if (m == nullptr)
        return;
    const ec_dict &dict = m->*member;
    if (dict.items == nullptr)
        return;
    for (std::size_t k = 0; k < dict.count; ++k) {
        if (dict.items[k].key && key == dict.items[k].key) {
            text_or_nothing(out, dict.items[k].value);
            return;
        }
    }
}

// clang-format off
void m_vctx_mess(const Record &r, const FormatContext &, Buffer &out, const std::string &key, int) { dict_value(out, r.msg, &ec_message::vctx_mess, key); }
void m_vctx_conn(const Record &r, const FormatContext &, Buffer &out, const std::string &key, int) { dict_value(out, r.msg, &ec_message::vctx_conn, key); }
void m_peer(const Record &r, const FormatContext &, Buffer &out, const std::string &, int) { append_peer_address(out, r.addr); }
void m_us(const Record &r, const FormatContext &, Buffer &out, const std::string &, int decimals)
{
    append_seconds(out, micros_of(r.now.tv_sec, r.now.tv_usec), decimals);
}
// %t{strftime}; %t alone compiles to Step::seconds (the thread's cached second).
void m_t(const Record &r, const FormatContext &, Buffer &out, const std::string &format, int)
{
    std::tm tm{};
    const std::time_t secs = r.now.tv_sec;
    localtime_r(&secs, &tm);
    char buf[256];
    const std::size_t n = std::strftime(buf, sizeof buf, format.c_str(), &tm);
    append_escaped(out, std::string_view(buf, n), 0);
}
void m_T(const Record &r, const FormatContext &, Buffer &out, const std::string &, int decimals)
{
    if (const auto q = queue_micros(r))
        append_seconds(out, *q, decimals);
}
void m_r(const Record &r, const FormatContext &, Buffer &out, const std::string &, int) { if (const ec_message *m = r.msg) text_or_nothing(out, m->rcptto_local); }
void m_R(const Record &r, const FormatContext &, Buffer &out, const std::string &, int) { if (const ec_message *m = r.msg) text_or_nothing(out, m->rcptto_domain); }
void m_m(const Record &r, const FormatContext &, Buffer &out, const std::string &, int) { if (const ec_message *m = r.msg) text_or_nothing(out, m->mailfrom_local); }
void m_M(const Record &r, const FormatContext &, Buffer &out, const std::string &, int) { if (const ec_message *m = r.msg) text_or_nothing(out, m->mailfrom_domain); }
// clang-format on

MacroInfo shows(std::string_view name, Field f, std::string_view meaning)
{
    const FieldInfo &info = field_info(f);
    return MacroInfo{name, MacroArg::none, info.kinds, meaning, &info, nullptr};
}

MacroInfo own(std::string_view name, MacroArg arg, KindMask kinds, MacroWriter write, std::string_view meaning)
{
    return MacroInfo{name, arg, kinds, meaning, nullptr, write};
}

} // namespace

const std::vector<MacroInfo> &template_macros()
{
    // clang-format off
    static const std::vector<MacroInfo> table{
        own("vctx_mess",     MacroArg::required_braces,   kMessageKinds, m_vctx_mess, "`%vctx_mess{key}`: value of `key` in the message's validation context"),
        own("vctx_conn",     MacroArg::required_braces,   kMessageKinds, m_vctx_conn, "`%vctx_conn{key}`: value of `key` in the connection's validation context"),
        own("p",             MacroArg::none,              kMessageKinds, write_protocol, "protocol the message was received with, e.g. `ESMTPS` (cores that offer it)"),
        own("h",             MacroArg::required_braces,   kMessageKinds, write_header, "`%h{Name}`: value of the message's first header `Name` (any case), capped at 1024 bytes (cores that offer it)"),
        shows("binding_slot", Field::binding_slot, "binding slot number (mtalog)"),
        shows("err_names",    Field::error_flags,  "`CONN_*` names of `err`, joined by `|` (mtalog)"),
        shows("err",          Field::error_code,   "`err` in decimal (mtalog)"),
        shows("peer_port",    Field::peer_port,    "peer port (mtalog; other kinds than connection failures: Exim adapter only)"),
        shows("peer_ip",      Field::peer_address, "peer IP address (mtalog; ditto)"),
        shows("peer_host",    Field::peer_host,    "peer host name (mtalog; Exim adapter only)"),
        own("peer",          MacroArg::none,              kAllKinds,     m_peer,      "peer as `a.b.c.d:port` or `[v6]:port` (mtalog; ditto)"),
        shows("errno",        Field::os_errno,     "the system errno behind `err` (mtalog; Exim adapter only)"),
        own("us",            MacroArg::decimals_required, kAllKinds,     m_us,        "`%us{N}`: unix time with N decimals, 1-6"),
        shows("BI",           Field::batch_id,     "batch id"),
        shows("CI",           Field::connection_id, "connection id"),
        own("t",             MacroArg::optional_braces,   kAllKinds,     m_t,         "unix time in seconds; `%t{strftime}`: local time formatted by strftime(3)"),
        own("T",             MacroArg::decimals_optional, kMessageKinds, m_T,         "time in queue in whole seconds; `%T{N}`: with N decimals, 0-6"),
        shows("i",            Field::message_id,   "message id (connection failures: Exim adapter only)"),
        own("r",             MacroArg::none,              kMessageKinds, m_r,         "recipient local part"),
        own("R",             MacroArg::none,              kMessageKinds, m_R,         "recipient domain"),
        own("m",             MacroArg::none,              kMessageKinds, m_m,         "sender local part"),
        own("M",             MacroArg::none,              kMessageKinds, m_M,         "sender domain"),
        shows("d",            Field::domain,       "routing domain"),
        shows("b",            Field::binding,      "binding name"),
        shows("g",            Field::binding_group, "binding group name"),
        shows("n",            Field::note,         "note / DSN text, capped at `max_note_bytes`"),
        shows("N",            Field::retries,      "number of delivery attempts"),
        shows("B",            Field::size,         "message size in bytes"),
        shows("H",            Field::remote_ip,    "remote IP of the delivery attempt"),
        shows("s",            Field::stage_name,   "connection stage name, e.g. `rcpt_to`"),
        shows("S",            Field::stage,        "connection stage number"),
        shows("C",            Field::bounce_class, "bounce class number (the instance's bounce rules), e.g. `10`"),
        shows("c",            Field::bounce_name,  "bounce class name, e.g. `Invalid Recipient`"),
        shows("reply_code",   Field::reply_code,   "SMTP reply code in the note or DSN, e.g. `550` (mtalog)"),
        shows("reply_status", Field::reply_status, "RFC 3463 enhanced status in the note or DSN, e.g. `5.1.1` (mtalog)"),
    };
    // clang-format on
    return table;
}

std::variant<CompiledTemplate, TemplateError> CompiledTemplate::compile(std::string_view text, RecordKind kind,
                                                                       bool classes)
{
    const auto &macros = template_macros();
    // Longest names first, so %vctx_mess wins over %v... and %binding_slot over %b.
    std::vector<int> by_length(macros.size());
    for (std::size_t i = 0; i < macros.size(); ++i)
        by_length[i] = static_cast<int>(i);
    std::stable_sort(by_length.begin(), by_length.end(),
                     [&](int a, int b) { return macros[a].name.size() > macros[b].name.size(); });

    CompiledTemplate t;
    std::string literal; // the text since the last macro
    // Ends an item: the literal so far goes before it, all but its last
    // kRoom bytes in literal steps of their own.
    auto push = [&](Item item) {
        std::string_view rest = literal;
        for (;;) {
            const bool last = rest.size() <= Item::kRoom;
            Item &step = last ? item : t.items_.emplace_back();
            const std::string_view piece = rest.substr(0, Item::kRoom);
            std::copy(piece.begin(), piece.end(), step.padded);
            step.length = static_cast<unsigned char>(piece.size());
            rest.remove_prefix(piece.size());
            if (last)
                break;
        }
        literal.clear();
        t.items_.push_back(std::move(item));
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
            // And valid UTF-8 without C1 controls or U+2028/2029, as the
            // text layer makes every value.
            const std::size_t n = static_cast<unsigned char>(text[i]) < 0x80 ? 1 : utf8_sequence_length(text.substr(i));
            if (n == 0)
                return TemplateError{i, "invalid UTF-8 in the template: a record is valid UTF-8"};
            if (breaks_lines(text.substr(i, n)))
                return TemplateError{i, "a C1 control or U+2028/U+2029 in the template: some readers break lines "
                                        "there, and a record is one line"};
            literal.append(text.substr(i, n));
            i += n;
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
        if (!classes && info.field != nullptr &&
            (info.field->field == Field::bounce_class || info.field->field == Field::bounce_name))
            return TemplateError{at, "macro '%" + std::string(info.name) + "' shows the bounce class, and bounce_classes = off"};
        i += 1 + info.name.size();
        Item item;
        if (info.field != nullptr) {
            item.step = Step::field;
            item.field = info.field->field;
        } else {
            item.step = Step::own;
            item.own = info.write;
        }
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
        // %T in whole seconds is the elapsed field exactly, and %t without
        // strftime the cached second: both written inline.
        if (item.own == m_T && item.number == 0) {
            item.step = Step::field;
            item.field = Field::elapsed;
        } else if (item.own == m_t && item.text.empty()) {
            item.step = Step::seconds;
        }
        push(std::move(item));
    }
    if (!literal.empty())
        push(Item{});
    return t;
}

void CompiledTemplate::format(const Record &r, const FormatContext &ctx, Buffer &out) const
{
    for (const Item &item : items_) {
        const std::size_t at = out.size();
        out.reserve(at + Item::kRoom);
        std::memcpy(out.data() + at, item.padded, Item::kRoom);
        out.try_resize(at + item.length);
        if (item.step == Step::field)
            write_field(item.field, r, ctx, out, '|');
        else if (item.step == Step::seconds)
            append_record_time(out, r, mtacfg::TimePrecision::seconds);
        else if (item.step == Step::own)
            item.own(r, ctx, out, item.text, item.number);
    }
}

} // namespace mtalog
