/*
 * mtahooks: what a loadable module exports, and what the core passes it.
 *
 * A module is `<modules_path>/<name>.so` exporting one C function,
 * ec_module_entry(), which returns a static ec_module_info. The core checks
 * abi_version and size before it calls anything else in the module.
 *
 * Lifecycle, for each config stanza `name "instance" { ... }`:
 *   create()  validates the stanza; opens nothing, writes nothing.
 *   start()   after every stanza of the config validated: opens files and
 *             registers hooks (registration is open only now).
 *   control() any time after start(), from any thread: console commands.
 *   stop()    unregisters hooks, writes every accepted record, joins the
 *             module's threads, closes files and frees the instance. After it
 *             returns the core may unload the .so.
 * A module that failed create() or start() is stopped (if created) and
 * unloaded. No function here lets a C++ exception escape.
 */
#ifndef MTAHOOKS_EC_MODULE_H
#define MTAHOOKS_EC_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include "ec_hooks.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One `name = value` line of a stanza, with where it was written. */
typedef struct ec_config_option {
    const char *name;  /* as written (option names are case-insensitive) */
    const char *value; /* unquoted, unescaped */
    const char *file;
    int line;
    int column;        /* of the name */
    int value_column;  /* of the value */
} ec_config_option;

typedef struct ec_config_stanza {
    const char *module;   /* e.g. "mtalog" */
    const char *instance; /* e.g. "main"; NULL for a singleton stanza */
    const char *file;
    int line;
    int column;
    const ec_config_option *options;
    size_t option_count;
} ec_config_stanza;

#define EC_MODULE_OK 0
#define EC_MODULE_ERROR (-1)

typedef struct ec_module_info {
    uint32_t abi_version; /* EC_ABI_VERSION the module was built against */
    uint32_t size;        /* sizeof(ec_module_info) as the module was built */
    const char *name;
    const char *version;
    const char *description;

    /* On error: returns EC_MODULE_ERROR and writes one line (file:line:column:
     * message where a config position applies) into err. */
    int (*create)(ec_core *core, const ec_config_stanza *stanza, void **instance,
                  char *err, size_t errlen);
    int (*start)(void *instance, char *err, size_t errlen);
    /* Console command (e.g. "stats"); writes a NUL-terminated answer into
     * out. Returns EC_MODULE_OK or EC_MODULE_ERROR (unknown command). */
    int (*control)(void *instance, const char *command, char *out, size_t outlen);
    void (*stop)(void *instance);
} ec_module_info;

#define EC_MODULE_ENTRY_SYMBOL "ec_module_entry"
typedef const ec_module_info *(*ec_module_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* MTAHOOKS_EC_MODULE_H */
