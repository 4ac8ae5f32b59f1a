#include "hook_handlers.hpp"

#include "instance.hpp"

namespace mtalog::handlers {

void attempt(void *closure, ec_message *msg, domain_record *dr, struct timeval *now, const char *note,
             int note_len) noexcept
{
    try {
        static_cast<Instance *>(closure)->log_message_record(RecordKind::attempt, msg, dr, now, note, note_len);
    } catch (...) {
    }
}

void connection_failure(void *closure, struct sockaddr *addr, int err, domain_record *dr, int binding_slot,
                        struct timeval *now) noexcept
{
    try {
        static_cast<Instance *>(closure)->log_connection_failure(addr, err, dr, binding_slot, now);
    } catch (...) {
    }
}

void permanent_failure(void *closure, ec_message *msg, domain_record *dr, struct timeval *now, const char *note,
                       int note_len) noexcept
{
    try {
        static_cast<Instance *>(closure)->log_message_record(RecordKind::permanent_failure, msg, dr, now, note,
                                                             note_len);
    } catch (...) {
    }
}

void reopen(void *closure) noexcept
{
    auto *instance = static_cast<Instance *>(closure);
    try {
        instance->reopen();
    } catch (...) {
        instance->reopen_failed();
    }
}

} // namespace mtalog::handlers
