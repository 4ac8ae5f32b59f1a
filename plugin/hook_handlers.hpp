// The C functions mtalog registers on the core's hooks. Each forwards to its
// Instance (the closure) and lets nothing escape: an MTA thread never sees an
// exception from us.
#pragma once

#include <mtahooks/ec_hooks.h>

namespace mtalog::handlers {

void attempt(void *closure, ec_message *msg, domain_record *dr, struct timeval *now, const char *note,
             int note_len) noexcept;
void connection_failure(void *closure, struct sockaddr *addr, int err, domain_record *dr, int binding_slot,
                        struct timeval *now) noexcept;
void permanent_failure(void *closure, ec_message *msg, domain_record *dr, struct timeval *now, const char *note,
                       int note_len) noexcept;
void reopen(void *closure) noexcept;

} // namespace mtalog::handlers
