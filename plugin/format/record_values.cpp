#include "record_values.hpp"

#include <arpa/inet.h>
#include <cstdio>
#include <cstring>
#include <netinet/in.h>

#include <mtahooks/conn_flags.hpp>

namespace mtalog {

namespace {

bool same_id(const message_id &a, const message_id &b) noexcept
{
    return a.slot == b.slot && a.pid == b.pid && a.counter == b.counter;
}

// Whether an id's text, already found to need no escape, is also free of
// what a separator or a CSV cell would have to treat (see append_message_id).
bool bare_id(const char *text, std::size_t n) noexcept
{
    if (n > 0 && (text[0] == ' ' || text[n - 1] == ' '))
        return false;
    for (std::size_t i = 0; i < n; ++i)
        if (text[i] == '@' || text[i] == '"' || text[i] == ',')
            return false;
    return true;
}

} // namespace

bool append_message_id(Buffer &out, const FormatContext &ctx, const message_id &id, char separator,
                       FormatCache *cache, bool check_bare)
{
    check_bare = check_bare && separator == 0;
    // '@' is the only separator a field is written with here.
    const bool cacheable = cache != nullptr && (separator == 0 || separator == '@');
    if (cacheable) {
        for (const FormatCache::Id &e : cache->ids) {
            if (e.valid && same_id(e.id, id)) {
                append_raw(out, e.text, e.len);
                return true;
            }
        }
    }
    // The core writes straight into the line; its text is escaped like any
    // other only when it holds something that needs it.
    const std::size_t at = out.size();
    out.resize(at + EC_MESSAGE_ID_TEXT_MAX + 1);
    char *text = out.data() + at;
    const std::size_t n = std::min<std::size_t>(ctx.core->message_id_text(ctx.core, &id, text, EC_MESSAGE_ID_TEXT_MAX + 1),
                                                EC_MESSAGE_ID_TEXT_MAX);
    const std::string_view view(text, n);
    std::size_t plain = 0;
    bool bare = false;
    if (check_bare) {
        // One scan also says whether the text is bare: no quote or comma
        // (and then no space at either end).
        plain = detail::plain_prefix(view, '"', ',');
        bare = plain == n && (n == 0 || (text[0] != ' ' && text[n - 1] != ' '));
        if (plain < n && (text[plain] == '"' || text[plain] == ','))
            plain += detail::plain_prefix(view.substr(plain), 0); // a quote or comma needs no escape
    } else {
        plain = detail::plain_prefix(view, separator);
    }
    if (plain == n) {
        if (cacheable && bare_id(text, n)) {
            FormatCache::Id &e = cache->ids[cache->next];
            cache->next ^= 1u;
            e.valid = true;
            e.id = id;
            e.len = static_cast<std::uint8_t>(n);
            std::memcpy(e.text, text, n);
        }
        out.resize(at + n);
        return bare;
    }
    char copy[EC_MESSAGE_ID_TEXT_MAX];
    std::memcpy(copy, text, n);
    out.resize(at);
    append_escaped(out, std::string_view(copy, n), separator);
    return false;
}

BindingNames binding_names(const FormatContext &ctx, int slot)
{
    if (slot >= 0 && static_cast<std::size_t>(slot) < ctx.slot_names.size()) {
        if (const auto &known = ctx.slot_names[static_cast<std::size_t>(slot)]; known.known)
            return BindingNames{known.group, known.name};
    }
    BindingNames names;
    if (ctx.core->binding_lookup(ctx.core, slot, &names.name, &names.group) != 0)
        names = BindingNames{};
    return names;
}

std::optional<long long> queue_micros(const Record &r)
{
    if (r.msg == nullptr || (r.msg->creation_time.tv_sec == 0 && r.msg->creation_time.tv_usec == 0))
        return std::nullopt;
    return micros_between(r.now.tv_sec, r.now.tv_usec, r.msg->creation_time.tv_sec, r.msg->creation_time.tv_usec);
}

namespace {

// Dotted quad by hand: glibc's inet_ntop goes through sprintf, many times
// the cost of the rest of a connection-failure record.
void write_ipv4(const in_addr &a, char *out)
{
    const auto *b = reinterpret_cast<const unsigned char *>(&a.s_addr);
    for (int k = 0; k < 4; ++k) {
        unsigned v = b[k];
        if (v >= 100) {
            *out++ = static_cast<char>('0' + v / 100);
            v %= 100;
            *out++ = static_cast<char>('0' + v / 10);
        } else if (v >= 10) {
            *out++ = static_cast<char>('0' + v / 10);
        }
        *out++ = static_cast<char>('0' + v % 10);
        *out++ = k < 3 ? '.' : '\0';
    }
}

} // namespace

Peer peer_of(const sockaddr *addr)
{
    Peer p;
    if (addr == nullptr)
        return p;
    if (addr->sa_family == AF_INET) {
        const auto *in = reinterpret_cast<const sockaddr_in *>(addr);
        write_ipv4(in->sin_addr, p.ip);
        p.known = true;
        p.port = ntohs(in->sin_port);
        std::memcpy(p.family, "ipv4", 5);
    } else if (addr->sa_family == AF_INET6) {
        const auto *in6 = reinterpret_cast<const sockaddr_in6 *>(addr);
        p.known = inet_ntop(AF_INET6, &in6->sin6_addr, p.ip, sizeof p.ip) != nullptr;
        p.port = ntohs(in6->sin6_port);
        std::memcpy(p.family, "ipv6", 5);
    } else if (addr->sa_family == AF_UNIX) {
        std::memcpy(p.family, "unix", 5);
    } else {
        std::snprintf(p.family, sizeof p.family, "af%u", static_cast<unsigned>(addr->sa_family));
    }
    return p;
}

const char *stage_name(int stage)
{
    static constexpr const char *names[] = {
        "not_connected", "idle",          "mail_from",      "after_mail_from",   "rcpt_to",
        "after_rcpt_to", "data",          "after_data",     "sending_body",      "reading_confirmation",
        "ehlo",          "after_ehlo",    "banner",         "rset",              "after_rset",
        "starttls",      "after_starttls", "tls_handshake", "tls_renegotiation", "xclient",
        "after_xclient", "oob_bounce",    "unknown"};
    if (stage < 0 || static_cast<std::size_t>(stage) >= std::size(names))
        return nullptr;
    return names[stage];
}

void append_peer_address(Buffer &out, const sockaddr *addr)
{
    const Peer p = peer_of(addr);
    if (!p.known)
        return;
    const bool v6 = p.family[3] == '6'; // "ipv6"
    if (v6)
        out.push_back('[');
    put(out, p.ip);
    if (v6)
        out.push_back(']');
    out.push_back(':');
    put_int(out, p.port);
}

void append_conn_flag_names(Buffer &out, int err, char separator, char quote)
{
    auto remaining = static_cast<unsigned>(err);
    bool first = true;
    auto open = [&] {
        if (!first)
            out.push_back(separator);
        if (quote != 0)
            out.push_back(quote);
        first = false;
    };
    for (const auto &flag : mtahooks::kConnFlags) {
        const auto bit = static_cast<unsigned>(flag.value);
        if ((remaining & bit) == 0)
            continue;
        open();
        put(out, flag.name);
        if (quote != 0)
            out.push_back(quote);
        remaining &= ~bit;
    }
    if (remaining != 0) {
        open();
        fmt::format_to(std::back_inserter(out), "0x{:x}", remaining);
        if (quote != 0)
            out.push_back(quote);
    }
}

BindingTexts binding_texts(const FormatContext &ctx, int slots, void (*write)(Buffer &out, const BindingNames &names))
{
    BindingTexts texts(static_cast<std::size_t>(slots));
    for (int slot = 0; slot < slots; ++slot) {
        const BindingNames names = binding_names(ctx, slot);
        if (names.group == nullptr && names.name == nullptr)
            continue;
        Buffer text;
        write(text, names);
        texts[static_cast<std::size_t>(slot)] = std::string(text.data(), text.size());
    }
    return texts;
}

} // namespace mtalog
