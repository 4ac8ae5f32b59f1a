/*
 * mtahooks: the data a Momentum-style MTA core hands to its logging hooks.
 *
 * Field names follow Momentum's documented ec_message / domain_record / string.
 * This header is C (C99 and later) and C++ clean. Every pointer documented
 * "may be NULL" really may be, and modules must cope.
 */
#ifndef MTAHOOKS_EC_TYPES_H
#define MTAHOOKS_EC_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A length-counted byte string, not NUL-terminated (Momentum's `string`).
 * `len` is the number of valid bytes at `buffer`; a negative len or a NULL
 * buffer means "no text". */
typedef struct string {
    int len;
    int allocd;
    char *buffer;
} string;

/* A message id. The core owns its text form (see ec_core.message_id_text):
 * the reference core writes `CC/cc-PPPPP-SSSSSSSS` (counter high byte and low
 * byte in hex, pid in decimal, slot in hex), e.g. 00/00-25004-31B987F3.
 * The all-zero id means "no id". */
typedef struct message_id {
    uint32_t slot;     /* low bits of the creation time */
    uint16_t pid;
    uint16_t counter;
} message_id;

/* One entry of a validation context dictionary (vctx_mess / vctx_conn). */
typedef struct ec_kv {
    const char *key;   /* NUL-terminated */
    const char *value; /* NUL-terminated */
} ec_kv;

typedef struct ec_dict {
    const ec_kv *items; /* may be NULL when count is 0 */
    size_t count;
} ec_dict;

/* Connection stages (Momentum's numbering, used by the `stage` field). */
enum {
    EC_STAGE_NOT_CONNECTED = 0,
    EC_STAGE_IDLE = 1,
    EC_STAGE_MAIL_FROM = 2,
    EC_STAGE_AFTER_MAIL_FROM = 3,
    EC_STAGE_RCPT_TO = 4,
    EC_STAGE_AFTER_RCPT_TO = 5,
    EC_STAGE_DATA = 6,
    EC_STAGE_AFTER_DATA = 7,
    EC_STAGE_SENDING_BODY = 8,
    EC_STAGE_READING_CONFIRMATION = 9,
    EC_STAGE_EHLO = 10,
    EC_STAGE_AFTER_EHLO = 11,
    EC_STAGE_BANNER = 12,
    EC_STAGE_RSET = 13,
    EC_STAGE_AFTER_RSET = 14,
    EC_STAGE_STARTTLS = 15,
    EC_STAGE_AFTER_STARTTLS = 16,
    EC_STAGE_TLS_HANDSHAKE = 17,
    EC_STAGE_TLS_RENEGOTIATION = 18,
    EC_STAGE_XCLIENT = 19,
    EC_STAGE_AFTER_XCLIENT = 20,
    EC_STAGE_OOB_BOUNCE = 21,
    EC_STAGE_UNKNOWN = 22
};

/* The message as the logging hooks see it. Strings are NUL-terminated and
 * may be NULL (meaning absent). */
typedef struct ec_message {
    message_id id;
    message_id batch_id;          /* all-zero: none */
    message_id conn_id;           /* all-zero: none */
    struct timeval creation_time;
    int binding_slot;             /* resolved by ec_core.binding_lookup */
    const char *mailfrom_local;
    const char *mailfrom_domain;
    const char *rcptto_local;
    const char *rcptto_domain;
    string *_code;                /* last DSN / response stored on the message; may be NULL */
    int num_retries;
    int stage;                    /* EC_STAGE_* */
    uint64_t size;                /* message size in bytes */
    const char *remote_ip;        /* peer of the last delivery attempt */
    const char *pathway;
    ec_dict vctx_mess;
    ec_dict vctx_conn;
} ec_message;

/* Momentum promises `domain` stays the first member. */
typedef struct domain_record {
    char *domain;
    uint32_t active_connections;
    uint32_t queued_messages;
} domain_record;

/* `err` of core_log_client_connection_failure: a bitmask of these. The values
 * are this ABI's own (Momentum publishes none) and are never renumbered. */
#define CONN_ACTION_REQUEUE1          0x0001
#define CONN_ACTION_PURGE_DOMAIN      0x0002
#define CONN_ERROR_MX_LOOKUP_FAILED   0x0010
#define CONN_ERROR_MX_LOOKUP_PENDING  0x0020
#define CONN_ERROR_SMTP_NULL_MX       0x0040
#define CONN_ERROR_NO_MXS_REACHABLE   0x0080
#define CONN_ERROR_PROHIBITED_IP      0x0100
#define CONN_ERROR_HOST_MAX_REACHED   0x0200
#define CONN_ERROR_SOCKET             0x0400
#define CONN_ERROR_IOCTL              0x0800
#define CONN_ERROR_BIND               0x1000
#define CONN_ERROR_CONNECT            0x2000
#define CONN_ERROR_CONNECT_NETWORK    0x4000
#define CONN_ERROR_CONNECT_TIMEOUT    0x8000

/* Every CONN_* flag, in ascending order, for building name tables:
 *   #define NAME(flag) { flag, #flag },
 *   static const struct { int value; const char *name; } t[] = { EC_CONN_FLAGS(NAME) }; */
#define EC_CONN_FLAGS(X)                                                                        \
    X(CONN_ACTION_REQUEUE1) X(CONN_ACTION_PURGE_DOMAIN) X(CONN_ERROR_MX_LOOKUP_FAILED)          \
    X(CONN_ERROR_MX_LOOKUP_PENDING) X(CONN_ERROR_SMTP_NULL_MX) X(CONN_ERROR_NO_MXS_REACHABLE)   \
    X(CONN_ERROR_PROHIBITED_IP) X(CONN_ERROR_HOST_MAX_REACHED) X(CONN_ERROR_SOCKET)             \
    X(CONN_ERROR_IOCTL) X(CONN_ERROR_BIND) X(CONN_ERROR_CONNECT) X(CONN_ERROR_CONNECT_NETWORK)  \
    X(CONN_ERROR_CONNECT_TIMEOUT)

#ifdef __cplusplus
}
#endif

#endif /* MTAHOOKS_EC_TYPES_H */
