#include "reason.hpp"

#include <algorithm>

#include "bounce_rules.hpp"

namespace mtalog {

namespace {

std::string_view full_reply_text(const Record &r) noexcept
{
    if (r.kind == RecordKind::connection_failure)
        return {};
    if (r.has_note)
        return r.note;
    // Only a permanent failure stands for the DSN stored on the message (as
    // ec_log_permanent_failure does): an attempt's would be an older one's.
    if (r.kind != RecordKind::permanent_failure)
        return {};
    const ec_message *m = r.msg;
    if (m != nullptr && m->_code != nullptr && m->_code->buffer != nullptr && m->_code->len > 0)
        return {m->_code->buffer, static_cast<std::size_t>(m->_code->len)};
    return {};
}

} // namespace

std::string_view reply_text(const Record &r, std::size_t cap) noexcept
{
    const std::string_view text = full_reply_text(r);
    return text.substr(0, std::min(text.size(), cap));
}

const Reason &reply_of(const Record &r, const FormatContext &ctx) noexcept
{
    if (r.reason)
        return *r.reason;
    Reason &why = r.reason.emplace();
    const std::string_view text = reply_text(r, ctx.max_note_bytes);
    if (!text.empty()) {
        why.has_text = true;
        why.reply = parse_smtp_reply(text);
    }
    return why;
}

const Reason &reason_of(const Record &r, const FormatContext &ctx) noexcept
{
    reply_of(r, ctx);
    Reason &why = *r.reason;
    if (why.class_done)
        return why;
    why.class_done = true;
    // A success is no bounce: a 2xx reply (or a 2.x.x status alone) has no class.
    const bool success = why.reply.has_code() ? why.reply.code < 300 : why.reply.klass == 2;
    if (!why.has_text || success || ctx.bounce_rules == nullptr)
        return why;
    why.classified = true;
    why.bounce = ctx.bounce_rules->classify(reply_text(r, ctx.max_note_bytes), why.reply, r.cache ? &r.cache->bounce_matches : nullptr);
    if (ctx.bounce_counts != nullptr)
        ctx.bounce_counts->by_kind[BounceCounts::kind_index(r.kind)][why.bounce].fetch_add(1, std::memory_order_relaxed);
    return why;
}

std::size_t status_text(const SmtpReply &reply, char *buf) noexcept
{
    std::size_t n = 0;
    auto number = [&](unsigned v) {
        char digits[3];
        std::size_t k = 0;
        do {
            digits[k++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0 && k < 3);
        while (k > 0)
            buf[n++] = digits[--k];
    };
    number(reply.klass);
    buf[n++] = '.';
    number(reply.subject);
    buf[n++] = '.';
    number(reply.detail);
    return n;
}

} // namespace mtalog
