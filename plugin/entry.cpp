// The core's entry point, ec_module_entry(): one of the module's two exported
// symbols (the other, mtalog_exim_event(), is Exim's: exim/exim_entry.cpp; see
// mtalog.map). Everything that crosses the core's C ABI passes through
// here, and no exception gets past it.
#include <cstdio>
#include <cstring>
#include <new>

#include <mtahooks/ec_module.h>

#include "instance.hpp"

namespace {

void put_text(char *err, std::size_t errlen, const std::string &text) noexcept
{
    if (err != nullptr && errlen > 0)
        std::snprintf(err, errlen, "%s", text.c_str());
}

// Runs `body`, turning any exception into an error line: nothing crosses
// the C ABI but a status and a message.
template <typename Body>
int guarded(char *err, std::size_t errlen, Body &&body) noexcept
{
    try {
        return body();
    } catch (const std::exception &e) {
        put_text(err, errlen, std::string("mtalog: ") + e.what());
    } catch (...) {
        put_text(err, errlen, "mtalog: unexpected error");
    }
    return EC_MODULE_ERROR;
}

int create(ec_core *core, const ec_config_stanza *stanza, void **instance, char *err, std::size_t errlen) noexcept
{
    if (instance)
        *instance = nullptr;
    return guarded(err, errlen, [&] {
        if (core == nullptr || stanza == nullptr || instance == nullptr) {
            put_text(err, errlen, "mtalog: create() called with a NULL argument");
            return EC_MODULE_ERROR;
        }
        // A core of this version built before members were appended to its
        // table passes a smaller size: accepted, and the module reads those
        // members only through EC_CORE_HAS.
        if (core->abi_version != EC_ABI_VERSION || core->size < EC_CORE_MIN_SIZE) {
            put_text(err, errlen,
                      "mtalog: core ABI version " + std::to_string(core->abi_version) + " (table size " +
                          std::to_string(core->size) + ") is not the version this module was built for (" +
                          std::to_string(EC_ABI_VERSION) + ", size at least " + std::to_string(EC_CORE_MIN_SIZE) +
                          ")");
            return EC_MODULE_ERROR;
        }
        auto result = mtalog::Instance::create(core, *stanza);
        if (auto *error = std::get_if<std::string>(&result)) {
            put_text(err, errlen, *error);
            return EC_MODULE_ERROR;
        }
        *instance = std::get<std::unique_ptr<mtalog::Instance>>(result).release();
        return EC_MODULE_OK;
    });
}

int start(void *instance, char *err, std::size_t errlen) noexcept
{
    return guarded(err, errlen, [&] {
        if (instance == nullptr) {
            put_text(err, errlen, "mtalog: start() called without an instance");
            return EC_MODULE_ERROR;
        }
        if (auto error = static_cast<mtalog::Instance *>(instance)->start()) {
            put_text(err, errlen, *error);
            return EC_MODULE_ERROR;
        }
        return EC_MODULE_OK;
    });
}

int control(void *instance, const char *command, char *out, std::size_t outlen) noexcept
{
    return guarded(out, outlen, [&] {
        if (instance == nullptr || command == nullptr)
            return EC_MODULE_ERROR;
        auto answer = static_cast<mtalog::Instance *>(instance)->control(command);
        if (!answer) {
            put_text(out, outlen, std::string("unknown command '") + command + "' (known: stats)");
            return EC_MODULE_ERROR;
        }
        put_text(out, outlen, *answer);
        return EC_MODULE_OK;
    });
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
