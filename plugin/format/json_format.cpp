#include "json_format.hpp"

#include <cstring>

#include "reason.hpp"

namespace mtalog {

namespace {

// Appends `text` (valid UTF-8, no control bytes) escaped for the inside of
// a JSON string: `"` and `\` get a backslash; U+2028 and U+2029 end lines in
// JavaScript, so they become \u2028 and \u2029.
void append_json_body(Buffer &out, std::string_view text)
{
    std::size_t plain = 0; // start of the run not yet copied
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        const bool line_separator = c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
                                    (text[i + 2] == '\xa8' || text[i + 2] == '\xa9');
        if (c != '"' && c != '\\' && !line_separator)
            continue;
        append_raw(out, text.data() + plain, i - plain);
        if (line_separator) {
            put(out, text[i + 2] == '\xa8' ? "\\u2028" : "\\u2029");
            i += 2;
        } else {
            const char escaped[2] = {'\\', c};
            append_raw(out, escaped, 2);
        }
        plain = i + 1;
    }
    append_raw(out, text.data() + plain, text.size() - plain);
}

// Whether text needs JSON's own escapes (a quote, a backslash, U+2028/9).
// Most values are ASCII without either: one vector pass says so.
bool needs_json_escape(std::string_view text)
{
    if (!detail::holds_any(text, '"', '\\', true))
        return false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '"' || c == '\\' ||
            (c == '\xe2' && i + 2 < text.size() && text[i + 1] == '\x80' &&
             (text[i + 2] == '\xa8' || text[i + 2] == '\xa9')))
            return true;
    }
    return false;
}

// Gives out[start..] (text already through the text layer) JSON's escapes,
// when it needs any.
void json_escape_from(Buffer &out, std::size_t start)
{
    if (needs_json_escape(std::string_view(out.data() + start, out.size() - start)))
        rewrite_from(out, start, append_json_body);
}

// Text from the core or the remote side through both layers of escapes: the
// text layer's (escape.hpp, capped at `cap`), then JSON's. Text that needs
// neither is found so in one scan (a quote stops it like any special byte).
void put_json_text(Buffer &out, std::string_view text, std::size_t cap)
{
    if (text.size() <= cap && detail::plain_prefix(text, '"') == text.size()) {
        append_raw(out, text.data(), text.size());
        return;
    }
    const std::size_t start = out.size();
    append_escaped_capped(out, text, 0, cap);
    json_escape_from(out, start);
}

// A field's NUL-terminated text through both layers: most are short and
// plain, and go in with one length and one scan.
void put_json_text(Buffer &out, const char *text)
{
    constexpr std::size_t kShort = 64; // within kMaxFieldBytes: no cap applies
    const std::size_t n = ::strnlen(text, kShort + 1);
    if (n <= kShort && detail::plain_prefix(std::string_view(text, n), '"') == n)
        append_raw(out, text, n);
    else
        put_json_text(out, bounded_field(text), kMaxFieldBytes);
}

// `key` (`,"name":"`), the field's text and the closing quote; nothing when
// the text is NULL or empty (absent values are omitted).
template <std::size_t N> [[gnu::always_inline]] inline void put_json_field(Buffer &out, const char (&key)[N], const char *text)
{
    if (text == nullptr || *text == '\0')
        return;
    put_literal(out, key);
    put_json_text(out, text);
    out.push_back('"');
}

// `key` and a message id as the core prints it; nothing for the all-zero id.
template <std::size_t N>
[[gnu::always_inline]] inline void put_json_id(Buffer &out, const char (&key)[N], const FormatContext &ctx, const message_id &id,
                 FormatCache *cache = nullptr)
{
    const std::size_t mark = out.size();
    put_literal(out, key);
    const std::size_t start = out.size();
    const bool bare = append_message_id(out, ctx, id, 0, cache, true);
    if (out.size() == start) {
        out.resize(mark);
        return;
    }
    if (!bare) // a bare id needs nothing more
        json_escape_from(out, start);
    out.push_back('"');
}

// `key`, then the local part and domain joined by `@`; nothing when both are
// absent.
template <std::size_t N>
[[gnu::always_inline]] inline void put_json_address(Buffer &out, const char (&key)[N], const char *local, const char *domain)
{
    const bool has_local = local && *local, has_domain = domain && *domain;
    if (!has_local && !has_domain)
        return;
    put_literal(out, key);
    if (has_local && has_domain) { // most: both short and plain, copied in one move with the '@' and the quote
        constexpr std::size_t kShort = 64; // within kMaxFieldBytes: no cap applies
        const std::size_t a = ::strnlen(local, kShort + 1), b = ::strnlen(domain, kShort + 1);
        if (a <= kShort && b <= kShort) { // copied, then checked in one scan
            const std::size_t at = out.size();
            const std::string_view text = append_raw_address(out, {local, a}, {domain, b}, '"');
            if (detail::plain_prefix(text, '"') == text.size())
                return;
            out.resize(at);
        }
    }
    if (has_local)
        put_json_text(out, local);
    if (has_domain) {
        out.push_back('@');
        put_json_text(out, domain);
    }
    out.push_back('"');
}

// The members of an object: each key is written with its leading comma but
// the first, which goes without.
class Members {
public:
    explicit Members(Buffer &out) : out_(out) {}
    template <std::size_t N> void key(const char (&text)[N])
    {
        if (first_)
            append_raw(out_, text + 1, N - 2);
        else
            put_literal(out_, text);
        first_ = false;
    }

private:
    Buffer &out_;
    bool first_ = true;
};

void put_json_binding_names(Buffer &out, const BindingNames &names)
{
    put_json_field(out, ",\"binding_group\":\"", names.group);
    put_json_field(out, ",\"binding\":\"", names.name);
}

// binding_group, binding and binding_slot of `slot`.
void put_json_binding(Buffer &out, const FormatContext &ctx, int slot)
{
    put_binding_text(out, ctx, ctx.json_bindings, slot, put_json_binding_names);
    put_literal(out, ",\"binding_slot\":");
    put_int(out, slot);
}

// "peer":{address, port, family, host}, when the record has any of them.
void put_json_peer(Buffer &out, const Record &r)
{
    const bool has_host = r.peer_host != nullptr && *r.peer_host != '\0';
    if (r.addr == nullptr && !has_host)
        return;
    const Peer p = peer_of(r.addr);
    put_literal(out, ",\"peer\":{");
    Members members(out);
    if (p.known && p.ip[0] != '\0') { // our own text: nothing to escape
        members.key(",\"address\":\"");
        put(out, p.ip);
        out.push_back('"');
    }
    if (p.known) {
        members.key(",\"port\":");
        put_int(out, p.port);
    }
    if (p.family[0] != '\0') {
        members.key(",\"family\":\"");
        put(out, p.family);
        out.push_back('"');
    }
    if (has_host) {
        members.key(",\"host\":\"");
        put_json_text(out, r.peer_host);
        out.push_back('"');
    }
    out.push_back('}');
}

// type (with the opening brace), timestamp, event_time and message_id: the
// start of every record.
template <std::size_t N> void put_json_head(Buffer &out, const char (&type)[N], const Record &r, const FormatContext &ctx)
{
    put_literal(out, type);
    append_unix_and_rfc3339(out, r.now, ",\"event_time\":\"", r.cache ? &r.cache->second : nullptr, // ours: nothing
                            r.cache ? &r.cache->rfc3339_second : nullptr);                       // to escape
    out.push_back('"');
    if (r.msg)
        put_json_id(out, ",\"message_id\":\"", ctx, r.msg->id);
}

void put_json_domain(Buffer &out, const Record &r)
{
    put_json_field(out, ",\"domain\":\"", r.dr ? r.dr->domain : nullptr);
}

// "reply":{code, status} and "bounce":{class, name}, when the record's text
// has them (our own digits and names: nothing to escape).
void put_json_reason(Buffer &out, const Record &r, const FormatContext &ctx)
{
    const Reason &why = reason_of(r, ctx);
    if (why.reply.has_code() || why.reply.has_status()) {
        put_literal(out, ",\"reply\":{");
        Members members(out);
        if (why.reply.has_code()) {
            members.key(",\"code\":");
            put_int(out, why.reply.code);
        }
        if (why.reply.has_status()) {
            members.key(",\"status\":\"");
            char status[12];
            const std::size_t n = status_text(why.reply, status);
            append_raw(out, status, n);
            out.push_back('"');
        }
        out.push_back('}');
    }
    if (why.classified) {
        const BounceClass &c = kBounceClasses[why.bounce];
        put_literal(out, ",\"bounce\":{\"class\":");
        put_int(out, c.number);
        put_literal(out, ",\"name\":\"");
        put(out, c.name);
        put_literal(out, "\"}");
    }
}

// Attempts and permanent failures.
template <std::size_t N>
void format_json_message(const Record &r, const FormatContext &ctx, const char (&type)[N], Buffer &out)
{
    put_json_head(out, type, r, ctx);
    const ec_message *m = r.msg;
    if (m) {
        put_json_id(out, ",\"batch_id\":\"", ctx, m->batch_id, r.cache);
        put_json_id(out, ",\"connection_id\":\"", ctx, m->conn_id, r.cache);
        put_json_address(out, ",\"mail_from\":\"", m->mailfrom_local, m->mailfrom_domain);
        put_json_address(out, ",\"rcpt_to\":\"", m->rcptto_local, m->rcptto_domain);
    }
    put_json_domain(out, r);
    if (m) {
        put_literal(out, ",\"size\":");
        put_int(out, static_cast<long long>(m->size));
        put_json_binding(out, ctx, m->binding_slot);
        put_literal(out, ",\"stage\":");
        put_int(out, m->stage);
        if (const char *name = stage_name(m->stage)) { // our own table: nothing to escape
            put_literal(out, ",\"stage_name\":\"");
            put(out, name);
            out.push_back('"');
        }
        put_literal(out, ",\"retries\":");
        put_int(out, m->num_retries);
        if (const auto micros = queue_micros(r)) {
            put_literal(out, ",\"elapsed\":");
            append_seconds(out, *micros, 0);
        }
        put_json_field(out, ",\"remote_ip\":\"", m->remote_ip);
    }
    put_json_peer(out, r);
    if (r.has_note) {
        put_literal(out, ",\"note\":\"");
        put_json_text(out, r.note, ctx.max_note_bytes);
        out.push_back('"');
    }
    put_json_reason(out, r, ctx);
    out.push_back('}');
}

void format_json_connection_failure(const Record &r, const FormatContext &ctx, Buffer &out)
{
    put_json_head(out, "{\"type\":\"connection_failure\",\"timestamp\":", r, ctx);
    put_json_domain(out, r);
    put_json_binding(out, ctx, r.binding_slot);
    put_json_peer(out, r);
    put_literal(out, ",\"error\":{\"code\":");
    put_int(out, r.err);
    if (r.err != 0) {
        put_literal(out, ",\"flags\":[");
        append_conn_flag_names(out, r.err, ',', '"'); // names and hex digits: nothing to escape
        out.push_back(']');
    }
    if (r.os_errno) {
        put_literal(out, ",\"errno\":");
        put_int(out, *r.os_errno);
    }
    put_literal(out, "}}");
}

} // namespace

void append_json_string(Buffer &out, std::string_view text)
{
    out.push_back('"');
    append_json_body(out, text);
    out.push_back('"');
}

BindingTexts json_binding_texts(const FormatContext &ctx, int slots)
{
    return binding_texts(ctx, slots, put_json_binding_names);
}

void format_json(const Record &record, const FormatContext &ctx, Buffer &out)
{
    switch (record.kind) {
    case RecordKind::attempt: format_json_message(record, ctx, "{\"type\":\"attempt\",\"timestamp\":", out); break;
    case RecordKind::permanent_failure:
        format_json_message(record, ctx, "{\"type\":\"permanent_failure\",\"timestamp\":", out);
        break;
    case RecordKind::connection_failure: format_json_connection_failure(record, ctx, out); break;
    }
}

} // namespace mtalog
