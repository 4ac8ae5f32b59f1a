// The module's only exported symbol: ec_module_entry(). Everything that
// crosses the C ABI passes through here, and no exception gets past it.
#include <cstdio>
#include <cstring>
#include <new>

#include <mtahooks/ec_module.h>

#include "instance.hpp"

namespace {

void put_error(char *err, std::size_t errlen, const std::string &text) noexcept
{
    if (err != nullptr && errlen > 0)
        std::snprintf(err, errlen, "%s", text.c_str());
}

int create(ec_core *core, const ec_config_stanza *stanza, void **instance, char *err, std::size_t errlen) noexcept
{
    try {
        if (instance)
            *instance = nullptr;
        if (core == nullptr || stanza == nullptr || instance == nullptr) {
            put_error(err, errlen, "mtalog: create() called with a NULL argument");
            return EC_MODULE_ERROR;
        }
        if (core->abi_version != EC_ABI_VERSION || core->size < sizeof(ec_core)) {
            put_error(err, errlen,
                      "mtalog: core ABI version " + std::to_string(core->abi_version) + " (table size " +
                          std::to_string(core->size) + ") is not the version this module was built for (" +
                          std::to_string(EC_ABI_VERSION) + ", size " + std::to_string(sizeof(ec_core)) + ")");
            return EC_MODULE_ERROR;
        }
        auto result = mtalog::Instance::create(core, *stanza);
        if (auto *error = std::get_if<std::string>(&result)) {
            put_error(err, errlen, *error);
            return EC_MODULE_ERROR;
        }
        *instance = std::get<std::unique_ptr<mtalog::Instance>>(result).release();
        return EC_MODULE_OK;
    } catch (const std::exception &e) {
        put_error(err, errlen, std::string("mtalog: ") + e.what());
    } catch (...) {
        put_error(err, errlen, "mtalog: unexpected error");
    }
    return EC_MODULE_ERROR;
}

int start(void *instance, char *err, std::size_t errlen) noexcept
{
    try {
        if (instance == nullptr) {
            put_error(err, errlen, "mtalog: start() called without an instance");
            return EC_MODULE_ERROR;
        }
        if (auto error = static_cast<mtalog::Instance *>(instance)->start()) {
            put_error(err, errlen, *error);
            return EC_MODULE_ERROR;
        }
        return EC_MODULE_OK;
    } catch (const std::exception &e) {
        put_error(err, errlen, std::string("mtalog: ") + e.what());
    } catch (...) {
        put_error(err, errlen, "mtalog: unexpected error");
    }
    return EC_MODULE_ERROR;
}

int control(void *instance, const char *command, char *out, std::size_t outlen) noexcept
{
    try {
        if (instance == nullptr || command == nullptr)
            return EC_MODULE_ERROR;
        auto answer = static_cast<mtalog::Instance *>(instance)->control(command);
        if (!answer) {
            put_error(out, outlen, std::string("unknown command '") + command + "' (known: stats)");
            return EC_MODULE_ERROR;
        }
        put_error(out, outlen, *answer);
        return EC_MODULE_OK;
    } catch (...) {
        put_error(out, outlen, "mtalog: unexpected error");
    }
    return EC_MODULE_ERROR;
}

void stop(void *instance) noexcept
{
    try {
        delete static_cast<mtalog::Instance *>(instance);
    } catch (...) {
    }
}

const ec_module_info info = {
    EC_ABI_VERSION,
    sizeof(ec_module_info),
    "mtalog",
    MTALOG_VERSION,
    "attempt, connection-failure and permanent-failure logging through spdlog",
    create,
    start,
    control,
    stop,
};

} // namespace

extern "C" __attribute__((visibility("default"))) const ec_module_info *ec_module_entry(void)
{
    return &info;
}
