/*
 * mtahooks: the producer API of the reference core (Momentum's log.h).
 * Callable from any thread of the core. Each call ends in the matching
 * core_log_*_v1 hook of `core`.
 */
#ifndef MTAHOOKS_LOG_H
#define MTAHOOKS_LOG_H

#include "ec_hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Records a permanent failure disposition of a message.
 * now  == NULL: the current time is used.
 * note == NULL: the DSN stored on the message (mess->_code) is used, which
 *               itself may be NULL (the hook then gets note NULL, note_len 0). */
void ec_core_log_permanent_failure(ec_core *core, ec_message *mess, domain_record *dr,
                                   struct timeval *now, const string *note);

/* Momentum's spelling: logs through the process's default core, the one set
 * with ec_set_default_core(). Does nothing when no core is set. */
void ec_log_permanent_failure(ec_message *mess, domain_record *dr, struct timeval *now,
                              const string *note);

void ec_set_default_core(ec_core *core);

#ifdef __cplusplus
}
#endif

#endif /* MTAHOOKS_LOG_H */
