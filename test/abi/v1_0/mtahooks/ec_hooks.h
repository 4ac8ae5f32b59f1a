/*
 * mtahooks: the core hook table a core hands to its modules.
 *
 * The four logging hook types carry exactly Momentum's documented signatures.
 * Every hook may be called from any thread; providers must be thread-safe.
 */
#ifndef MTAHOOKS_EC_HOOKS_H
#define MTAHOOKS_EC_HOOKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "ec_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a struct in ec_types.h, ec_hooks.h or ec_module.h changes
 * incompatibly. A core refuses modules built for another version and a module
 * refuses cores of another version. */
#define EC_ABI_VERSION 1u

/* ---- hook function types (Momentum's signatures) ---- */

typedef void (*core_log_attempt_v1_fn)(void *closure, ec_message *msg, domain_record *dr,
                                       struct timeval *now, const char *note, int note_len);

typedef void (*core_log_client_connection_failure_fn)(void *closure, struct sockaddr *addr, int err,
                                                      domain_record *dr, int binding_slot,
                                                      struct timeval *now);

typedef void (*core_log_permanent_failure_v1_fn)(void *closure, ec_message *msg, domain_record *dr,
                                                 struct timeval *now, const char *note,
                                                 int note_len);

typedef void (*core_log_reopen_fn)(void *closure);

/* ---- diagnostics ---- */

enum ec_log_level {
    EC_LOG_ERROR = 0,
    EC_LOG_WARNING = 1,
    EC_LOG_NOTICE = 2,
    EC_LOG_DEBUG = 3
};

/* ---- the table ---- */

typedef struct ec_core ec_core;

/*
 * Registration functions return 0 on success and -1 when the core refuses
 * (registration is only open while the core is configuring its modules, from
 * the core's main thread). Providers run in registration order; *_first puts
 * a provider in front of all earlier ones, *_last behind them. The closure
 * comes back as the first argument of every call.
 */
struct ec_core {
    uint32_t abi_version; /* EC_ABI_VERSION of the core */
    uint32_t size;        /* sizeof(ec_core) as the core was built */
    void *core_private;   /* the core's own state; modules do not touch it */
    const char *core_name;

    int (*register_core_log_attempt_v1_hook_first)(ec_core *core, core_log_attempt_v1_fn fn, void *closure);
    int (*register_core_log_attempt_v1_hook_last)(ec_core *core, core_log_attempt_v1_fn fn, void *closure);
    int (*register_core_log_client_connection_failure_hook_first)(ec_core *core, core_log_client_connection_failure_fn fn, void *closure);
    int (*register_core_log_client_connection_failure_hook_last)(ec_core *core, core_log_client_connection_failure_fn fn, void *closure);
    int (*register_core_log_permanent_failure_v1_hook_first)(ec_core *core, core_log_permanent_failure_v1_fn fn, void *closure);
    int (*register_core_log_permanent_failure_v1_hook_last)(ec_core *core, core_log_permanent_failure_v1_fn fn, void *closure);
    int (*register_core_log_reopen_hook_first)(ec_core *core, core_log_reopen_fn fn, void *closure);
    int (*register_core_log_reopen_hook_last)(ec_core *core, core_log_reopen_fn fn, void *closure);

    /* Removes every provider registered with `closure`, on every hook. When
     * it returns, no call to those providers is running or will start, so the
     * module may free the closure and be unloaded. Callable at any time from
     * any thread except from inside a hook call. Returns how many providers
     * were removed. */
    int (*unregister_closure)(ec_core *core, void *closure);

    /* Diagnostics for the operator (Momentum's paniclog). Thread-safe. */
    void (*paniclog)(ec_core *core, int level, const char *module, const char *message);

    /* Resolves a binding slot. Returns 0 and sets *name and *group (strings
     * owned by the core, valid and unchanged until the module is unloaded) when the slot is
     * known; returns -1 and sets both to NULL otherwise. Thread-safe. */
    int (*binding_lookup)(ec_core *core, int slot, const char **name, const char **group);

    /* Writes the text form of `id` into buf (NUL-terminated, truncated to
     * buflen). Returns the length of the full text form; an all-zero id has
     * the empty text form. Thread-safe. */
    size_t (*message_id_text)(ec_core *core, const message_id *id, char *buf, size_t buflen);
};

/* Longest message-id text form, excluding the NUL. */
#define EC_MESSAGE_ID_TEXT_MAX 32

#ifdef __cplusplus
}
#endif

#endif /* MTAHOOKS_EC_HOOKS_H */
