#include "mainlog_format.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <mtahooks/conn_flags.hpp>

namespace mtalog {

namespace {

constexpr char kSep = '@';

void put(Buffer &out, std::string_view s) { out.append(s.data(), s.data() + s.size()); }

void put_int(Buffer &out, long long v)
{
    const fmt::format_int text(v);
    out.append(text.data(), text.data() + text.size());
}

void put_field(Buffer &out, const char *text)
{
    if (text != nullptr)
        append_escaped(out, text, kSep);
}

void put_message_id(Buffer &out, const FormatContext &ctx, const message_id &id)
{
    char text[EC_MESSAGE_ID_TEXT_MAX + 1];
    const size_t n = ctx.core->message_id_text(ctx.core, &id, text, sizeof text);
    append_escaped(out, std::string_view(text, std::min(n, sizeof text - 1)), kSep);
}

void put_binding(Buffer &out, const FormatContext &ctx, int slot)
{
    const char *name = nullptr;
    const char *group = nullptr;
    if (ctx.core->binding_lookup(ctx.core, slot, &name, &group) != 0)
        name = group = nullptr;
    put_field(out, group);
    out.push_back(kSep);
    put_field(out, name);
}

// Whole seconds from creation to the event, rounded down.
long long elapsed_seconds(const timeval &from, const timeval &to)
{
    const long long micros = (static_cast<long long>(to.tv_sec) - from.tv_sec) * 1000000LL +
                             (static_cast<long long>(to.tv_usec) - from.tv_usec);
    return micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
}

void format_message_record(const Record &r, const FormatContext &ctx, char letter, Buffer &out)
{
    const ec_message *m = r.msg;
    append_time(out, r.now, ctx.precision);
    out.push_back(kSep);
    if (m) {
        put_message_id(out, ctx, m->id);
        out.push_back(kSep);
        put_message_id(out, ctx, m->batch_id);
        out.push_back(kSep);
        put_message_id(out, ctx, m->conn_id);
    } else {
        put(out, "@@");
    }
    out.push_back(kSep);
    out.push_back(letter);
    out.push_back(kSep);
    put_field(out, r.dr ? r.dr->domain : nullptr);
    out.push_back(kSep);
    if (m) {
        put_int(out, static_cast<long long>(m->size));
        out.push_back(kSep);
        put_binding(out, ctx, m->binding_slot);
        out.push_back(kSep);
        put_int(out, m->stage);
        out.push_back(kSep);
        put_int(out, m->num_retries);
        out.push_back(kSep);
        if (m->creation_time.tv_sec != 0 || m->creation_time.tv_usec != 0) // zero: unknown
            put_int(out, elapsed_seconds(m->creation_time, r.now));
        out.push_back(kSep);
        put_field(out, m->remote_ip);
    } else {
        put(out, "@@@@@@");
    }
    out.push_back(kSep);
    if (r.has_note)
        append_escaped_capped(out, r.note, 0, ctx.max_note_bytes);
}

void format_connection_failure(const Record &r, const FormatContext &ctx, Buffer &out)
{
    append_time(out, r.now, ctx.precision);
    put(out, "@@@@C@");
    put_field(out, r.dr ? r.dr->domain : nullptr);
    out.push_back(kSep);
    append_peer_address(out, r.addr);
    out.push_back(kSep);
    put_binding(out, ctx, r.binding_slot);
    out.push_back(kSep);
    put_int(out, r.binding_slot);
    out.push_back(kSep);
    put_int(out, r.err);
    out.push_back(kSep);
    append_conn_flag_names(out, r.err);
}

} // namespace

void append_time(Buffer &out, const timeval &t, mtacfg::TimePrecision precision)
{
    put_int(out, static_cast<long long>(t.tv_sec));
    if (precision == mtacfg::TimePrecision::microseconds) {
        char frac[7];
        long usec = static_cast<long>(t.tv_usec);
        if (usec < 0 || usec > 999999)
            usec = 0;
        for (int i = 5; i >= 0; --i, usec /= 10)
            frac[i + 1] = static_cast<char>('0' + usec % 10);
        frac[0] = '.';
        out.append(frac, frac + 7);
    }
}

void append_peer_address(Buffer &out, const sockaddr *addr)
{
    if (addr == nullptr)
        return;
    char text[INET6_ADDRSTRLEN];
    if (addr->sa_family == AF_INET) {
        const auto *in = reinterpret_cast<const sockaddr_in *>(addr);
        if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) == nullptr)
            return;
        put(out, text);
        out.push_back(':');
        put_int(out, ntohs(in->sin_port));
    } else if (addr->sa_family == AF_INET6) {
        const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(addr);
        if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text) == nullptr)
            return;
        out.push_back('[');
        put(out, text);
        put(out, "]:");
        put_int(out, ntohs(in6->sin6_port));
    }
}

void append_conn_flag_names(Buffer &out, int err)
{
    auto remaining = static_cast<unsigned>(err);
    bool first = true;
    for (const auto &flag : mtahooks::kConnFlags) {
        const auto bit = static_cast<unsigned>(flag.value);
        if ((remaining & bit) == 0)
            continue;
        if (!first)
            out.push_back('|');
        put(out, flag.name);
        remaining &= ~bit;
        first = false;
    }
    if (remaining != 0) {
        if (!first)
            out.push_back('|');
        fmt::format_to(std::back_inserter(out), "0x{:x}", remaining);
    }
}

void format_mainlog(const Record &record, const FormatContext &ctx, Buffer &out)
{
    switch (record.kind) {
    case RecordKind::attempt: format_message_record(record, ctx, 'A', out); break;
    case RecordKind::permanent_failure: format_message_record(record, ctx, 'P', out); break;
    case RecordKind::connection_failure: format_connection_failure(record, ctx, out); break;
    }
}

} // namespace mtalog
