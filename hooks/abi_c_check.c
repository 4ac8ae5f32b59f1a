/* Built as C11 with -Wpedantic -Werror: the ABI headers must stay C-clean. */
#include <mtahooks/mtahooks.h>

#define NAME(flag) {flag, #flag},
static const struct {
    int value;
    const char *name;
} conn_flags[] = {EC_CONN_FLAGS(NAME)};

int mtahooks_abi_c_check(void);
int mtahooks_abi_c_check(void)
{
    ec_core core = {0};
    ec_module_info info = {0};
    ec_message msg = {0};
    domain_record dr = {0};
    (void)core;
    (void)info;
    (void)msg;
    (void)dr;
    /* The membership test compiles in C, and an empty table offers nothing. */
    if (EC_CORE_HAS(&core, message_protocol) || EC_CORE_HAS(&core, message_header) || EC_CORE_MIN_SIZE == 0)
        return -1;
    return (int)(sizeof conn_flags / sizeof conn_flags[0]) + conn_flags[0].value + (int)EC_ABI_VERSION;
}
