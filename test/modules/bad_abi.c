/* A module built for another ABI version: the core must refuse it before
 * calling anything but the entry point. */
#include <mtahooks/ec_module.h>

static int never(void) { return -1; }

static const ec_module_info info = {
    99u, sizeof(ec_module_info), "bad_abi", "0", "built for ABI 99", 0, 0, 0, 0,
};

__attribute__((visibility("default"))) const ec_module_info *ec_module_entry(void)
{
    (void)never;
    return &info;
}
